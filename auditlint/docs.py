"""Rule documentation from the rule docstrings: terminal text, markdown pages, JSON."""

from __future__ import annotations

import json
from typing import Sequence

from auditlint.registry import rule_class


def rule_markdown(code: str) -> str:
    cls = rule_class(code)
    lines = [f"# {cls.code} `{cls.name}`", "", f"Fix: **{cls.fix_safety}**" + (" (with `--unsafe-fixes`)" if cls.fix_safety == "unsafe" else ""), ""]
    lines.append(cls.docs())
    options = [o for o in cls.options]
    if options and "## Options" not in cls.docs():
        lines += ["", "## Options"] + [f"- `{o.name}` ({o.type}, default `{o.default}`): {o.help}" for o in options]
    return "\n".join(lines).rstrip() + "\n"


def rule_text(code: str) -> str:
    return rule_markdown(code)


def rules_json(codes: Sequence[str]) -> str:
    out = []
    for code in codes:
        cls = rule_class(code)
        out.append(
            {
                "code": cls.code,
                "name": cls.name,
                "summary": cls.summary,
                "fix": cls.fix_safety,
                "options": [{"name": o.name, "type": o.type, "default": o.default, "help": o.help} for o in cls.options],
                "docs": cls.docs(),
            }
        )
    return json.dumps(out, indent=2)


def index_markdown(codes: Sequence[str]) -> str:
    rows = ["| code | name | what | fix |", "|---|---|---|---|"]
    for code in codes:
        cls = rule_class(code)
        rows.append(f"| [{cls.code}]({cls.code}.md) | `{cls.name}` | {cls.summary} | {cls.fix_safety} |")
    return "# Rules\n\n" + "\n".join(rows) + "\n"


def write_pages(directory: str) -> list[str]:
    """Write one page per rule plus README.md (the index) into `directory`; return the files."""
    from pathlib import Path

    from auditlint.registry import RULES

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for code in sorted(RULES):
        page = out / f"{code}.md"
        page.write_text(rule_markdown(code), encoding="utf-8")
        written.append(str(page))
    index = out / "README.md"
    index.write_text(index_markdown(sorted(RULES)), encoding="utf-8")
    written.append(str(index))
    return written


if __name__ == "__main__":
    import sys

    for name in write_pages(sys.argv[1] if len(sys.argv) > 1 else "rules"):
        print(name)
