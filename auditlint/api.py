"""The public Python API: lint or fix a string, lint paths."""

from __future__ import annotations

import os
from typing import Iterable, Optional, Sequence, Union

from auditlint.config import Settings
from auditlint.model import FileError, Finding


def _codes(settings: Settings, select: Optional[Sequence[str]]) -> list[str]:
    if select is not None:
        from auditlint.registry import select_codes

        return select_codes(tuple(select), ())
    return settings.enabled_codes()


def lint_source(
    code: Union[str, bytes],
    path: str = "<string>",
    settings: Optional[Settings] = None,
    *,
    select: Optional[Sequence[str]] = None,
    with_fixes: bool = True,
) -> list[Finding]:
    """Lint source text and return its findings (sorted). Raises SyntaxError when it does not parse."""
    from auditlint.engine import lint_bytes

    settings = settings or Settings()
    data = code.encode("utf-8") if isinstance(code, str) else code
    findings, errors = lint_bytes(data, path, settings, _codes(settings, select), want_edits=with_fixes)
    _raise_first(errors)
    return findings


def fix_source(
    code: Union[str, bytes],
    path: str = "<string>",
    settings: Optional[Settings] = None,
    *,
    select: Optional[Sequence[str]] = None,
    unsafe: Optional[bool] = None,
) -> str:
    """Apply every applicable fix to source text and return the new text."""
    from auditlint.fixer import fix_bytes

    settings = settings or Settings()
    data = code.encode("utf-8") if isinstance(code, str) else code
    outcome = fix_bytes(
        data,
        path,
        settings,
        _codes(settings, select),
        unsafe=settings.unsafe_fixes if unsafe is None else unsafe,
    )
    _raise_first([e for e in outcome.errors if e.code == "E999"])
    from auditlint.suppress import decode_source

    return decode_source(outcome.new_source)[0]


def lint_paths(
    paths: Iterable[Union[str, os.PathLike[str]]],
    *,
    settings: Optional[Settings] = None,
    select: Optional[Sequence[str]] = None,
) -> list[Finding]:
    """Lint files and directories (with the usual discovery and config) and return the findings."""
    from auditlint.runner import RunOptions, run

    overrides = {}
    if select is not None:
        overrides["select"] = tuple(select)
    result = run(
        [str(p) for p in paths],
        RunOptions(use_cache=False, jobs=1, want_edits=True),
        explicit_settings=settings,
        overrides=overrides,
    )
    return result.findings


def _raise_first(errors: Sequence[FileError]) -> None:
    for err in errors:
        if err.code == "E999":
            exc = SyntaxError(err.message)
            exc.lineno = err.line or None
            exc.offset = err.column or None
            raise exc
