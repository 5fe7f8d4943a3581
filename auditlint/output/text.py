"""Human output: `text` (with the source line and a caret, colour on a TTY) and `concise`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from auditlint.model import Applicability, Finding

if TYPE_CHECKING:
    from auditlint.output import RenderContext


def _style(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def fixable(f: Finding, unsafe: bool) -> bool:
    return f.fix is not None and (f.fix.applicability is Applicability.SAFE or unsafe)


def render_text(findings: Sequence[Finding], rc: RenderContext) -> str:
    out = []
    for f in findings:
        marker = "[*] " if fixable(f, rc.unsafe_fixes) else ""
        head = f"{_style(f.path, '1', rc.color)}:{f.line}:{f.column}: {_style(f.code, '1;31', rc.color)} {marker}{f.message}"
        out.append(head)
        if f.source_line:
            line = f.source_line.expandtabs(4) if "\t" not in f.source_line[: f.column] else f.source_line
            prefix = f.source_line[: f.column - 1]
            pad = len(prefix.expandtabs(4)) if "\t" in prefix else len(prefix)
            width = (f.end_column - f.column) if f.end_line == f.line else len(f.source_line) - (f.column - 1)
            out.append(f"    {line}")
            out.append("    " + " " * pad + _style("^" * max(1, width), "31", rc.color))
        out.append("")
    return "\n".join(out)


def render_concise(findings: Sequence[Finding]) -> str:
    lines = [f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}" for f in findings]
    return "\n".join(lines) + ("\n" if lines else "")
