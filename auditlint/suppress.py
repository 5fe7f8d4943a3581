"""Suppressions: `# noqa` comments on a finding's line or its statement's last line,
`# auditlint: skip-file`, and keeping them honest: unused `noqa` codes (AL001) and `--add-noqa`.
Baselines live in `auditlint.baseline`."""

from __future__ import annotations

import bisect
import io
import re
import tokenize
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

from auditlint.model import Applicability, Edit, Finding, Fix

if TYPE_CHECKING:
    from auditlint.config import Settings

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*))?", re.IGNORECASE)
_SKIP_FILE = re.compile(rb"^[ \t\f]*#[ \t]*auditlint:[ \t]*skip-file\b", re.MULTILINE)
_CODE = re.compile(r"[A-Za-z]+[0-9]+")

#: line -> None for a bare noqa (everything), else the set of codes.
NoqaMap = dict[int, Optional[frozenset[str]]]


def is_skip_file(data: bytes) -> bool:
    return b"skip-file" in data and _SKIP_FILE.search(data) is not None


def noqa_codes_by_line(text: str) -> NoqaMap:
    """Noqa comments per line, read from real comments only (never from inside strings)."""
    out: NoqaMap = {}
    if "noqa" not in text and "NOQA" not in text:
        return out
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
        for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), 1):
            idx = raw.find("#")
            if idx >= 0:
                tokens.append(tokenize.TokenInfo(tokenize.COMMENT, raw[idx:], (number, idx), (number, len(raw)), raw))
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        match = _NOQA.search(tok.string)
        if not match:
            continue
        codes = match.group("codes")
        line = tok.start[0]
        if codes is None:
            out[line] = None
        else:
            found = frozenset(c.upper() for c in _CODE.findall(codes))
            prev = out.get(line, frozenset())
            out[line] = None if prev is None and line in out else (prev or frozenset()) | found
    return out


def suppressed(noqa: NoqaMap, code: str, lines: tuple[int, int]) -> bool:
    for line in set(lines):
        if line in noqa:
            codes = noqa[line]
            if codes is None or code in codes:
                return True
    return False


# ---- honest suppressions: unused `noqa` codes (AL001) and `--add-noqa` --------------------

#: Reported by `--report-unused-noqa`; outside the rule space, so selection never turns it on.
UNUSED_NOQA_CODE = "AL001"
UNUSED_NOQA_NAME = "unused-noqa"

_LINE_WITH_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


@dataclass(frozen=True)
class Directive:
    """A `# noqa` directive inside a real comment; columns are 0-based characters."""

    line: int
    start: int
    end: int
    codes: Optional[tuple[str, ...]]
    comment_start: int
    comment_end: int


def _tokens(text: str) -> Optional[list[tokenize.TokenInfo]]:
    # newline="" keeps `\r`, `\n` and `\r\n` as line ends, numbering lines as the parser does.
    try:
        return list(tokenize.generate_tokens(io.StringIO(text, newline="").readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def split_lines(text: str) -> list[str]:
    """Physical lines with their line endings (form feeds and Unicode separators stay inside)."""
    return _LINE_WITH_END.findall(text)


def directives(text: str, tokens: Optional[Sequence[tokenize.TokenInfo]] = None) -> list[Directive]:
    """Every noqa directive of a file, from real comments only."""
    if "noqa" not in text.lower():
        return []
    tokens = tokens if tokens is not None else _tokens(text)
    out = []
    for tok in tokens or ():
        if tok.type != tokenize.COMMENT:
            continue
        match = _NOQA.search(tok.string)
        if match is None:
            continue
        raw = match.group("codes")
        codes = tuple(dict.fromkeys(c.upper() for c in _CODE.findall(raw))) if raw else None
        col = tok.start[1]
        out.append(Directive(tok.start[0], col + match.start(), col + match.end(), codes, col, tok.end[1]))
    return out


def _removal(line: str, d: Directive, keep: Sequence[str]) -> Edit:
    """The edit that drops unused codes from a directive (or the directive itself)."""
    if keep:
        return Edit(d.line, d.start + 1, d.line, d.end + 1, f"# noqa: {', '.join(keep)}")
    rest = line[d.end : d.comment_end].strip()
    if not rest:
        # The directive ends its comment: remove it with the blank space before it.
        start = len(line[: d.start].rstrip())
        return Edit(d.line, start + 1, d.line, d.end + 1, "")
    # Words follow the directive (a reason, say): keep them as a plain comment.
    return Edit(d.line, d.start + 1, d.line, d.end + 1, "#")


def unused_noqa(data: bytes, path: str, settings: Settings, codes: Sequence[str]) -> list[Finding]:
    """AL001 findings for `# noqa: ALnnn` codes that suppress nothing. Only our own namespace is
    judged (other tools' codes and bare `# noqa` are theirs too), and only codes enabled for this
    file, since a disabled rule cannot tell whether its suppression is needed; an unknown `AL`
    code is always reported. `# noqa: AL001` on the line keeps the directive as it is."""
    if b"noqa" not in data.lower() or is_skip_file(data):
        return []
    from auditlint.engine import lint_tree, parse, prefilter
    from auditlint.registry import RULES, rule_class

    module, _ = parse(data, path)
    if module is None:
        return []
    text = module.code
    found = [d for d in directives(text) if d.codes and UNUSED_NOQA_CODE not in d.codes]
    if not found:
        return []
    rule_classes = prefilter(data, [rule_class(c) for c in codes])
    located = lint_tree(module, path, settings, rule_classes).located if rule_classes else []
    used = {(line, loc.report.rule.code) for loc in located if loc.suppressed for line in (loc.range.start.line, loc.statement_end)}
    enabled = set(codes)
    lines = split_lines(text)
    out = []
    for d in found:
        assert d.codes is not None
        unused = [c for c in d.codes if c.startswith("AL") and ((c in enabled and (d.line, c) not in used) or c not in RULES)]
        if not unused:
            continue
        line = lines[d.line - 1].rstrip("\r\n") if d.line <= len(lines) else ""
        keep = [c for c in d.codes if c not in unused]
        unknown = [c for c in unused if c not in RULES]
        known = [c for c in unused if c in RULES]
        detail = "; ".join(
            part
            for part in (
                f"unused: {', '.join(f'`{c}`' for c in known)}" if known else "",
                f"unknown: {', '.join(f'`{c}`' for c in unknown)}" if unknown else "",
            )
            if part
        )
        title = "Remove the unused `noqa` codes" if keep else "Remove the unused `noqa` directive"
        out.append(
            Finding(
                code=UNUSED_NOQA_CODE,
                name=UNUSED_NOQA_NAME,
                message=f"Unused `noqa` directive ({detail})",
                path=path,
                line=d.line,
                column=d.start + 1,
                end_line=d.line,
                end_column=d.end + 1,
                fix=Fix(Applicability.SAFE, title, (_removal(line, d, keep),)),
                source_line=line,
            )
        )
    return out


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply single-line edits (1-based, end exclusive) that do not overlap."""
    lines = split_lines(text)
    for e in sorted(edits, key=lambda e: (e.line, e.column), reverse=True):
        if e.line != e.end_line or not 0 < e.line <= len(lines):
            raise ValueError("only single-line edits inside the text are supported")
        line = lines[e.line - 1]
        lines[e.line - 1] = line[: e.column - 1] + e.content + line[e.end_column - 1 :]
    return "".join(lines)


def decode_source(data: bytes) -> tuple[str, str]:
    """(text, encoding) as Python reads a file: PEP 263 cookie or BOM, else UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), encoding
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", "replace"), "utf-8"


def noqa_line(finding: Finding, safe_lines: set[int], statement_ends: Sequence[int]) -> Optional[int]:
    """Where a `# noqa` for this finding goes: its first line, unless that line ends inside a
    string or with a backslash, then the last line of its statement (both suppress it)."""
    if finding.line in safe_lines:
        return finding.line
    i = bisect.bisect_left(statement_ends, finding.line)
    if i < len(statement_ends) and statement_ends[i] in safe_lines:
        return statement_ends[i]
    return None


def add_noqa(data: bytes, findings: Sequence[Finding]) -> tuple[bytes, int]:
    """Write `# noqa: CODE` for every finding, merging with the directives already there.
    Returns the new bytes (same encoding and line endings) and how many lines were changed."""
    text, encoding = decode_source(data)
    tokens = _tokens(text)
    if tokens is None:
        return data, 0
    # A comment can end a line only where the line ends between tokens.
    safe = {t.start[0] for t in tokens if t.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)}
    ends = sorted({t.start[0] for t in tokens if t.type == tokenize.NEWLINE})
    wanted: dict[int, list[str]] = {}
    for f in findings:
        if f.code == UNUSED_NOQA_CODE:
            continue
        line = noqa_line(f, safe, ends)
        if line is not None and f.code not in wanted.setdefault(line, []):
            wanted[line].append(f.code)
    existing = {d.line: d for d in directives(text, tokens)}
    lines = split_lines(text)
    changed = 0
    for number, codes in sorted(wanted.items()):
        if number > len(lines):
            continue
        raw = lines[number - 1]
        body = raw.rstrip("\r\n")
        ending = raw[len(body) :]
        d = existing.get(number)
        if d is not None:
            if d.codes is None:
                continue
            merged = list(d.codes) + [c for c in sorted(codes) if c not in d.codes]
            if merged == list(d.codes):
                continue
            body = body[: d.start] + f"# noqa: {', '.join(merged)}" + body[d.end :]
        else:
            # After a comment already there (a `type: ignore`, say), else right after the code.
            body = f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}"
        lines[number - 1] = body + ending
        changed += 1
    if not changed:
        return data, 0
    return "".join(lines).encode(encoding), changed
