"""Output formats; each module renders findings (plain data from `auditlint.model`) to text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from auditlint.model import FileError, Finding

FORMATS = ("text", "concise", "json", "sarif", "github", "junit", "gitlab")


@dataclass
class RenderContext:
    """What a renderer may need besides the findings."""

    unsafe_fixes: bool = False
    color: bool = False
    cwd: str = "."


def render(fmt: str, findings: Sequence[Finding], errors: Sequence[FileError], rc: RenderContext) -> str:
    if fmt == "text":
        from auditlint.output.text import render_text

        return render_text(findings, rc)
    if fmt == "concise":
        from auditlint.output.text import render_concise

        return render_concise(findings)
    if fmt == "json":
        from auditlint.output.json import render_json

        return render_json(findings)
    if fmt == "sarif":
        from auditlint.output.sarif import render_sarif

        return render_sarif(findings, errors, rc)
    if fmt == "github":
        from auditlint.output.github import render_github

        return render_github(findings)
    if fmt == "junit":
        from auditlint.output.junit import render_junit

        return render_junit(findings)
    if fmt == "gitlab":
        from auditlint.output.gitlab import render_gitlab

        return render_gitlab(findings)
    raise ValueError(f"unknown output format {fmt}")
