"""One module per rule; `auditlint.registry` lists them."""
