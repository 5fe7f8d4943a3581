"""Baseline files: record today's findings so that only new ones are reported.

A finding's fingerprint is the hash of its code, its path (relative to the baseline file), the
enclosing scope (`Class.method`) and the token-normalised source of its statement and of the
reported node, so moving code around, adding lines elsewhere or editing comments and whitespace
does not resurrect it, while the same problem in another function is a different finding. The
baseline counts each fingerprint, so a second identical finding in the same scope is new.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import tokenize
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from auditlint import __version__
from auditlint.model import Finding
from auditlint.suppress import decode_source

FORMAT = 1
_SKIP_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


class BaselineError(Exception):
    """A baseline file that cannot be read, parsed or written; the message names the file."""


@dataclass(frozen=True)
class Entry:
    """One fingerprint in a baseline, with how many findings share it."""

    path: str
    code: str
    fingerprint: str
    count: int
    scope: str = ""
    snippet: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "code": self.code,
            "scope": self.scope,
            "snippet": self.snippet,
            "fingerprint": self.fingerprint,
            "count": self.count,
        }


@dataclass
class Outcome:
    """What applying a baseline did: the findings still reported, how many it absorbed, and the
    recorded findings that no longer occur in the files linted."""

    new: list[Finding] = field(default_factory=list)
    absorbed: int = 0
    stale: list[Entry] = field(default_factory=list)

    @property
    def stale_count(self) -> int:
        return sum(e.count for e in self.stale)


def normalise(text: str) -> str:
    """Source with comments, layout and line breaks removed: tokens joined by one space."""
    parts: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in _SKIP_TOKENS:
                parts.append(tok.string)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # A fragment (an unclosed bracket of a multi-line node) ends early; what was read counts.
        pass
    return " ".join(parts) if parts else " ".join(text.split())


class _Locator:
    """Answers "which statement and scope is this position in" for one file, with `ast`."""

    def __init__(self, text: str) -> None:
        self.lines = re.split(r"\r\n|\r|\n", text)
        self.tree: Optional[ast.Module]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            # Syntax newer than this interpreter: fall back to the finding's own lines.
            self.tree = None

    def _text(self, first: int, last: int) -> str:
        return "\n".join(self.lines[first - 1 : last])

    def _span(self, f: Finding, last_line: int) -> str:
        """The reported node's source, cut at `last_line` (a loop's header, not its body)."""
        end_line = min(f.end_line, last_line)
        chunk = self.lines[f.line - 1 : end_line]
        if not chunk:
            return ""
        if end_line == f.end_line:
            chunk[-1] = chunk[-1][: f.end_column - 1]
        chunk[0] = chunk[0][f.column - 1 :]
        return "\n".join(chunk)

    def context(self, f: Finding) -> tuple[str, str, str]:
        """(scope, statement source, node source) for a finding."""
        scope: list[str] = []
        stmt: Optional[ast.stmt] = None
        body: list[ast.stmt] = list(self.tree.body) if self.tree is not None else []
        while body:
            inner = next((s for s in body if s.lineno <= f.line <= (s.end_lineno or s.lineno)), None)
            if inner is None:
                break
            stmt = inner
            children = _child_statements(inner)
            if not any(c.lineno <= f.line <= (c.end_lineno or c.lineno) for c in children):
                break
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                scope.append(inner.name)
            body = children
        if stmt is None:
            return "", self._text(f.line, f.line), self._span(f, f.line)
        children = _child_statements(stmt)
        if children:
            # A compound statement's header (`while True:`): up to the first nested statement
            # below the finding, so edits in the body leave the fingerprint alone.
            later = [c.lineno for c in children if c.lineno > f.line]
            last = max(f.line, min(later) - 1) if later else f.line
            return ".".join(scope), self._text(f.line, last), self._span(f, last)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.append(stmt.name)
        last = stmt.end_lineno or stmt.lineno
        return ".".join(scope), self._text(stmt.lineno, last), self._span(f, last)


def _child_statements(stmt: ast.stmt) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(stmt, name, None)
        if isinstance(value, list):
            out.extend(s for s in value if isinstance(s, ast.stmt))
    for handler in getattr(stmt, "handlers", None) or []:
        out.extend(handler.body)
    for case in getattr(stmt, "cases", None) or []:
        out.extend(case.body)
    return sorted(out, key=lambda s: (s.lineno, s.col_offset))


def _relative(path: str, base: Path) -> str:
    try:
        rel = os.path.relpath(os.path.abspath(path), base)
    except ValueError:
        rel = path
    return rel.replace(os.sep, "/")


def read_source(path: str) -> Optional[str]:
    """A file's text as Python reads it (PEP 263 coding cookie, BOM), or None when unreadable."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return decode_source(data)[0]


SourceReader = Callable[[str], Optional[str]]


def entries_for(findings: Sequence[Finding], base: Path, read: SourceReader = read_source) -> list[tuple[Finding, Entry]]:
    """Each finding with its (count-1) entry; files are read and parsed once each."""
    locators: dict[str, Optional[_Locator]] = {}
    out = []
    for f in findings:
        if f.path not in locators:
            text = read(f.path)
            locators[f.path] = _Locator(text) if text is not None else None
        locator = locators[f.path]
        scope, statement, node = locator.context(f) if locator is not None else ("", f.source_line, f.source_line)
        path = _relative(f.path, base)
        norm_stmt, norm_node = normalise(statement), normalise(node)
        digest = hashlib.sha256("\0".join((f.code, path, scope, norm_stmt, norm_node)).encode()).hexdigest()[:24]
        snippet = norm_node if len(norm_node) <= 120 else norm_node[:119] + "…"
        out.append((f, Entry(path, f.code, digest, 1, scope, snippet)))
    return out


def build(findings: Sequence[Finding], base: Path, read: SourceReader = read_source) -> list[Entry]:
    """Baseline entries for findings, one per fingerprint with its count, in a stable order."""
    counts: Counter[str] = Counter()
    first: dict[str, Entry] = {}
    for _, entry in entries_for(findings, base, read):
        counts[entry.fingerprint] += 1
        first.setdefault(entry.fingerprint, entry)
    entries = [Entry(e.path, e.code, e.fingerprint, counts[fp], e.scope, e.snippet) for fp, e in first.items()]
    return sorted(entries, key=lambda e: (e.path, e.code, e.scope, e.snippet, e.fingerprint))


def write(path: Path, findings: Sequence[Finding], read: SourceReader = read_source) -> int:
    """Write a baseline for these findings; returns how many findings it records."""
    entries = build(findings, path.absolute().parent, read)
    doc = {
        "format": FORMAT,
        "tool": f"auditlint {__version__}",
        "findings": [e.to_json() for e in entries],
    }
    try:
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"{path}: cannot write the baseline: {exc.strerror or exc}") from None
    return sum(e.count for e in entries)


def load(path: Path) -> list[Entry]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline file not found (create it with `--write-baseline {path}`)") from None
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read the baseline: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("findings"), list):
            raise ValueError("not an auditlint baseline (format 1)")
        return [
            Entry(str(e["path"]), str(e["code"]), str(e["fingerprint"]), int(e["count"]), str(e.get("scope", "")), str(e.get("snippet", "")))
            for e in doc["findings"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"{path}: invalid baseline: {exc}") from None


def apply(
    baseline_path: Path,
    entries: Sequence[Entry],
    findings: Sequence[Finding],
    linted: Mapping[str, Sequence[str]],
    read: SourceReader = read_source,
) -> Outcome:
    """Report the findings the baseline does not account for. Findings sharing a fingerprint are
    matched in file order: the first `count` are absorbed, any further ones are new. `linted`
    (display path -> enabled codes) limits staleness to files and rules this run looked at."""
    base = baseline_path.absolute().parent
    budget = {e.fingerprint: e.count for e in entries}
    used: Counter[str] = Counter()
    outcome = Outcome()
    for f, entry in entries_for(sorted(findings, key=Finding.sort_key), base, read):
        if used[entry.fingerprint] < budget.get(entry.fingerprint, 0):
            used[entry.fingerprint] += 1
            outcome.absorbed += 1
        else:
            outcome.new.append(f)
    looked_at = {_relative(path, base): set(codes) for path, codes in linted.items()}
    for e in entries:
        missing = e.count - used[e.fingerprint]
        # A deleted file's findings are gone too; other files count only if this run linted them.
        gone = not (base / e.path).exists()
        if missing > 0 and (gone or e.code in looked_at.get(e.path, ())):
            outcome.stale.append(Entry(e.path, e.code, e.fingerprint, missing, e.scope, e.snippet))
    return outcome
