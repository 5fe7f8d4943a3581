"""Results cache keyed by (tool version + settings hash, file path, content hash).

One JSON file per settings fingerprint under `.auditlint_cache/`. Reading it needs neither LibCST
nor the rules, so a warm run never imports them. A corrupt or truncated file is ignored and
rebuilt; writes are atomic, so concurrent runs never leave a broken file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from auditlint.model import Applicability, Edit, FileError, Finding, Fix

CACHE_DIR = ".auditlint_cache"
FORMAT = 1


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _finding_to(f: Finding) -> list[Any]:
    fix = None
    if f.fix is not None:
        fix = [f.fix.applicability.value, f.fix.title, [[e.line, e.column, e.end_line, e.end_column, e.content] for e in f.fix.edits]]
    return [f.code, f.name, f.message, f.line, f.column, f.end_line, f.end_column, fix, f.source_line]


def _finding_from(path: str, row: list[Any]) -> Finding:
    code, name, message, line, column, end_line, end_column, fix, source_line = row
    fx = None
    if fix is not None:
        fx = Fix(Applicability(fix[0]), fix[1], tuple(Edit(*e) for e in fix[2]))
    return Finding(code, name, message, path, line, column, end_line, end_column, fx, source_line)


class Cache:
    """Per-settings result store for one project root."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        self.path = root / CACHE_DIR / f"results-{fingerprint}.json"
        self.entries: dict[str, Any] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("files"), dict):
            self.entries = data["files"]

    def get(self, key: str, digest: str, display: str, need_edits: bool) -> Optional[tuple[list[Finding], list[FileError]]]:
        entry = self.entries.get(key)
        if not isinstance(entry, list) or len(entry) != 4 or entry[0] != digest:
            return None
        if need_edits and not entry[3]:
            return None
        try:
            findings = [_finding_from(display, row) for row in entry[1]]
            errors = [FileError(display, *row) for row in entry[2]]
        except (TypeError, ValueError):
            return None
        return findings, errors

    def put(self, key: str, digest: str, findings: list[Finding], errors: list[FileError], has_edits: bool) -> None:
        # Internal errors are not cached: a crash should be retried, not remembered.
        if any(e.code == "E001" for e in errors):
            return
        self.entries[key] = [
            digest,
            [_finding_to(f) for f in findings],
            [[e.message, e.line, e.column, e.code] for e in errors],
            has_edits,
        ]
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            gitignore = self.path.parent / ".gitignore"
            if not gitignore.exists():
                gitignore.write_text("# Created by auditlint\n*\n", encoding="utf-8")
            import tempfile

            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": FORMAT, "files": self.entries}, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            # A read-only checkout still lints; it just cannot remember.
            return
