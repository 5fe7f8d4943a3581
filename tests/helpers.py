"""Helpers the rule tests share: settings for an example, lint and fix of a text."""

from __future__ import annotations

from typing import Any, Mapping

import libcst as cst

from auditlint.api import fix_source, lint_source
from auditlint.config import Settings
from auditlint.model import Finding


def settings_for(code: str, options: Mapping[str, Any] | None = None, fix_style: str = "stdlib") -> Settings:
    opts = tuple(sorted((options or {}).items()))
    return Settings(fix_style=fix_style, rule_options=((code, opts),) if opts else ())


def lint(text: str, code: str, **kw: Any) -> list[Finding]:
    return lint_source(text, "example.py", settings_for(code, **kw), select=[code])


def fix(text: str, code: str, **kw: Any) -> str:
    return fix_source(text, "example.py", settings_for(code, **kw), select=[code], unsafe=True)


def assert_fix_proven(original: str, fixed: str, code: str, **kw: Any) -> None:
    """The fixed text parses and compiles, the finding is gone, and a second fix changes nothing."""
    cst.parse_module(fixed)
    compile(fixed, "example.py", "exec", dont_inherit=True)
    remaining = [f for f in lint(fixed, code, **kw) if f.fix is not None]
    assert remaining == [], f"fixable findings remain after the fix: {remaining}"
    assert fix(fixed, code, **kw) == fixed, "a second --fix changed the code"
    assert len(lint(fixed, code, **kw)) < len(lint(original, code, **kw)) or lint(original, code, **kw) == []
