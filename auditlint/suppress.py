"""Suppressions: `# noqa` comments on a finding's line or its statement's last line, and
`# auditlint: skip-file`."""

from __future__ import annotations

import io
import re
import tokenize
from typing import Optional

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
        for number, raw in enumerate(text.splitlines(), 1):
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
