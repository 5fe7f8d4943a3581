"""GitHub Actions workflow commands (`::error ...::message`), escaped as the Actions toolkit does."""

from __future__ import annotations

from typing import Sequence

from auditlint.model import Finding


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        props = ",".join(
            f"{k}={escape_property(str(v))}"
            for k, v in (
                ("title", f"{f.code} ({f.name})"),
                ("file", f.path),
                ("line", f.line),
                ("col", f.column),
                ("endLine", f.end_line),
                ("endColumn", f.end_column),
            )
        )
        lines.append(f"::error {props}::{escape_data(f'{f.code} {f.message}')}")
    return "\n".join(lines) + ("\n" if lines else "")
