"""Cheap structural tests on the stdlib `ast` tree, for the prefilter: each says False only when a
rule can report nothing in the file. CPython's parser builds this tree several times faster than
LibCST's, and a file no rule needs is syntax-checked with it anyway."""

from __future__ import annotations

import ast
from typing import Callable, Iterable

#: `try` and, from Python 3.11, `try`/`except*` (the same fields).
_TRIES: tuple[type, ...] = tuple(t for t in (ast.Try, getattr(ast, "TryStar", None)) if isinstance(t, type))
_LOOPS = (ast.For, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp, ast.Lambda)


def call_assignment_at_import(tree: ast.Module) -> bool:
    """A `name = call(...)` (or annotated) among the statements that run on import: the module
    body and the bodies of its `if`, `try`, `except`, `else` and `finally` blocks."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call):
            return True
        if isinstance(stmt, ast.If):
            stack.extend(stmt.body)
            stack.extend(stmt.orelse)
        elif isinstance(stmt, _TRIES):
            block: ast.Try = stmt  # type: ignore[assignment]
            stack.extend(block.body)
            stack.extend(block.orelse)
            stack.extend(block.finalbody)
            for handler in block.handlers:
                stack.extend(handler.body)
    return False


def method_call_in_loop(methods: Iterable[str]) -> Callable[[ast.Module], bool]:
    """A test for a call `x.m(...)`, `m` one of `methods`, inside a `for` loop, a comprehension
    or a lambda (any depth: a superset of "in the same function as the loop")."""
    wanted = frozenset(methods)

    def test(tree: ast.Module) -> bool:
        for node in ast.walk(tree):
            if isinstance(node, _LOOPS):
                for inner in ast.walk(node):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Attribute)
                        and inner.func.attr in wanted
                    ):
                        return True
        return False

    return test
