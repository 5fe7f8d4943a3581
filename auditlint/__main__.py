"""`python -m auditlint`."""

from auditlint.cli import main

if __name__ == "__main__":
    main()
