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
