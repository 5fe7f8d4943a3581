"""Cheap child iteration over LibCST nodes that skips whitespace, punctuation and other trivia."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import libcst as cst

# Fields that only ever hold formatting tokens: no rule looks into them.
_TRIVIA_FIELDS = frozenset(
    {
        "lpar",
        "rpar",
        "leading_lines",
        "lines_after_decorators",
        "header",
        "footer",
        "comma",
        "equal",
        "semicolon",
        "colon",
        "dot",
        "lbracket",
        "rbracket",
        "lbrace",
        "rbrace",
        "star",
        "asynchronous",
        "trailing_whitespace",
        "newline",
        "whitespace_after_star",
        "whitespace_after_arg",
        "whitespace_before_colon",
    }
)

_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(cls: type) -> tuple[str, ...]:
    """The names of the fields of `cls` that can hold child nodes worth visiting, in field order."""
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in _TRIVIA_FIELDS and not f.name.startswith("whitespace")
        )
        _FIELDS[cls] = names
    return names


#: Whether a type is a CSTNode: `isinstance` against the abstract CSTNode goes through the ABC
#: machinery, and this test runs for every field of every node of every walk.
_IS_NODE: dict[type, bool] = {}


def _is_node(cls: type) -> bool:
    found = _IS_NODE.get(cls)
    if found is None:
        found = _IS_NODE[cls] = issubclass(cls, cst.CSTNode)
    return found


def iter_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Yield the non-trivia children of `node`."""
    for name in child_fields(type(node)):
        value = getattr(node, name)
        cls = type(value)
        if cls is tuple or cls is list:
            for item in value:
                if _is_node(type(item)):
                    yield item
        elif _is_node(cls):
            yield value


def iter_descendants(node: cst.CSTNode, *, into_scopes: bool = True) -> Iterator[cst.CSTNode]:
    """Yield every non-trivia descendant of `node` (not `node` itself), pre-order.

    With `into_scopes=False` the bodies of nested functions, lambdas and classes are not entered.
    """
    stack = list(iter_children(node))
    stack.reverse()
    while stack:
        child = stack.pop()
        yield child
        if not into_scopes and isinstance(child, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        grand = list(iter_children(child))
        grand.reverse()
        stack.extend(grand)
