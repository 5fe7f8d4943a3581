"""Apply fixes to one file: pick non-overlapping fixes, apply them in one transform, add
imports, re-parse and verify, re-lint, repeat to a fixed point (at most 10 rounds)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import libcst as cst

from auditlint.config import Settings
from auditlint.engine import (
    Located,
    TreeLint,
    check_syntax,
    crash_errors,
    finding_of,
    lint_tree,
    parse,
    prefilter,
    size_error,
    source_lines,
)
from auditlint.model import Applicability, FileError, Finding
from auditlint.patching import apply_changes, apply_patch_extras
from auditlint.registry import rule_class
from auditlint.rule import Rule
from auditlint.suppress import is_skip_file

MAX_ROUNDS = 10


@dataclass
class FixOutcome:
    """What fixing one file did."""

    new_source: bytes
    applied: list[str] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


def _compiles(code: str, path: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(code, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def _fixable(loc: Located, unsafe: bool) -> bool:
    patch = loc.report.patch
    if patch is None or loc.suppressed:
        return False
    return patch.applicability is Applicability.SAFE or unsafe


def _ranges(lint: TreeLint, loc: Located) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    assert loc.report.patch is not None
    out = []
    for node in loc.report.patch.changes:
        try:
            rng = lint.positions[node]
        except KeyError:
            continue
        out.append(((rng.start.line, rng.start.column), (rng.end.line, rng.end.column)))
    return out


def _overlaps(a: Sequence[tuple[tuple[int, int], tuple[int, int]]], b: Sequence[tuple[tuple[int, int], tuple[int, int]]]) -> bool:
    for s1, e1 in a:
        for s2, e2 in b:
            if s1 < e2 and s2 < e1:
                return True
    return False


def _choose(lint: TreeLint, unsafe: bool) -> list[Located]:
    chosen: list[Located] = []
    taken: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for loc in lint.located:
        if not _fixable(loc, unsafe):
            continue
        ranges = _ranges(lint, loc)
        if _overlaps(ranges, taken):
            continue
        chosen.append(loc)
        taken.extend(ranges)
    return chosen


def _apply(module: cst.Module, chosen: Sequence[Located]) -> cst.Module:
    changes: dict[cst.CSTNode, Any] = {}
    for loc in chosen:
        assert loc.report.patch is not None
        changes.update(loc.report.patch.changes)
    new = apply_changes(module, changes)
    return apply_patch_extras(new, [loc.report.patch for loc in chosen if loc.report.patch is not None])


def _key(module: cst.Module, loc: Located) -> tuple[str, str]:
    return (loc.report.rule.code, module.code_for_node(loc.report.node))


def _verified(code: str, path: str, original_compiles: bool, like: cst.Module) -> Optional[cst.Module]:
    """The re-parsed module when `code` is valid (and compiles, if the original did), with the
    original's encoding so the file is written back as it was read."""
    try:
        module = cst.parse_module(code)
    except Exception:  # noqa: BLE001 - any parser failure means the fix is dropped
        return None
    if original_compiles and not _compiles(code, path):
        return None
    return module.with_changes(encoding=like.encoding)


def fix_bytes(
    data: bytes,
    path: str,
    settings: Settings,
    codes: Sequence[str],
    *,
    unsafe: bool,
    want_edits: bool = False,
) -> FixOutcome:
    """Fix one file's bytes; the result keeps encoding, BOM and line endings (LibCST keeps them)."""
    outcome = FixOutcome(new_source=data)
    if is_skip_file(data):
        return outcome
    too_big = size_error(data, path, settings)
    if too_big is not None:
        outcome.errors.append(too_big)
        return outcome
    rule_classes: list[type[Rule]] = prefilter(data, [rule_class(c) for c in codes])
    if not rule_classes:
        error = check_syntax(data, path)
        if error is not None:
            outcome.errors.append(error)
        return outcome
    module, error = parse(data, path)
    if module is None:
        if error is not None:
            outcome.errors.append(error)
        return outcome
    original_compiles = _compiles(module.code, path)
    lint: Optional[TreeLint] = None
    dropped: set[tuple[str, str]] = set()
    for _ in range(MAX_ROUNDS):
        try:
            lint = lint_tree(module, path, settings, rule_classes)
        except RecursionError:
            outcome.errors.append(FileError(path, "cannot lint: the file is nested too deeply", 0, 0, "E999"))
            return outcome
        chosen = [loc for loc in _choose(lint, unsafe) if _key(module, loc) not in dropped]
        if not chosen:
            break
        new_module = _verified(_apply(module, chosen).code, path, original_compiles, module)
        if new_module is None:
            # Find the culprits: keep each fix that verifies on its own.
            good = [loc for loc in chosen if _verified(_apply(module, [loc]).code, path, original_compiles, module)]
            for loc in chosen:
                if loc not in good:
                    dropped.add(_key(module, loc))
                    outcome.errors.append(
                        FileError(
                            path,
                            f"fix dropped: {loc.report.rule.code} `{loc.report.patch.title if loc.report.patch else ''}` "
                            "produced code that does not parse",
                            loc.range.start.line,
                            loc.range.start.column + 1,
                            "E002",
                        )
                    )
            if not good:
                break
            new_module = _verified(_apply(module, good).code, path, original_compiles, module)
            if new_module is None:
                break
            chosen = good
        outcome.applied.extend(f"{loc.report.rule.code} {loc.report.patch.title}" for loc in chosen if loc.report.patch)
        module = new_module
        lint = None
    if lint is None:
        lint = lint_tree(module, path, settings, rule_classes)
    outcome.errors.extend(crash_errors(path, lint.crashes))
    lines = source_lines(module.code)
    outcome.remaining = sorted(
        (finding_of(loc, path, module, lines, want_edits) for loc in lint.located if not loc.suppressed),
        key=Finding.sort_key,
    )
    if outcome.applied:
        outcome.new_source = _keep_final_newline(data, module.bytes)
    return outcome


def _keep_final_newline(original: bytes, new: bytes) -> bytes:
    """LibCST drops the final line break of a file whose lines end with a lone CR; put it back."""
    for ending in (b"\r\n", b"\n", b"\r"):
        if original.endswith(ending):
            if not new.endswith((b"\n", b"\r")):
                return new + ending
            break
    return new
