"""Plain data that crosses process boundaries and reaches the outputs: findings, fixes, errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional


class Applicability(str, enum.Enum):
    """How far a fix can be trusted to keep behaviour."""

    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Edit:
    """Replace the text between two 1-based positions (end exclusive) with `content`."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "content": self.content,
        }


@dataclass(frozen=True)
class Fix:
    """A fix as text edits, ready for output and for editors."""

    applicability: Applicability
    title: str
    edits: tuple[Edit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "applicability": self.applicability.value,
            "title": self.title,
            "edits": [e.to_json() for e in self.edits],
        }


@dataclass(frozen=True)
class Finding:
    """One problem found in one file; lines and columns are 1-based, end exclusive."""

    code: str
    name: str
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    fix: Optional[Fix] = None
    source_line: str = field(default="", compare=False)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.code)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "fix": self.fix.to_json() if self.fix else None,
        }


@dataclass(frozen=True)
class FileError:
    """A file that could not be read, parsed, linted or written; always exit code 2."""

    path: str
    message: str
    line: int = 0
    column: int = 0
    code: str = "E902"

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "line": self.line,
            "column": self.column,
        }


@dataclass
class FileResult:
    """Everything one file produced: findings, errors, and (with --fix) the new text."""

    path: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    fixed_count: int = 0
    new_source: Optional[bytes] = None
    old_source: Optional[bytes] = None
    fixes_applied: list[str] = field(default_factory=list)
