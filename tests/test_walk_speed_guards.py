"""The shortcuts the walk and the binding scan take stay exact as LibCST changes: they test
exact node types, which is only the same as `isinstance` for types without subclasses."""

from __future__ import annotations

import libcst as cst

from auditlint.analysis.bindings import _SCANNED
from auditlint.analysis.walk import iter_children


def _node_types() -> list[type]:
    return [c for c in vars(cst).values() if isinstance(c, type) and issubclass(c, cst.CSTNode)]


def test_scanned_types_have_no_subclasses() -> None:
    for scanned in _SCANNED:
        subclasses = [c.__name__ for c in _node_types() if issubclass(c, scanned) and c is not scanned]
        assert not subclasses, f"{scanned.__name__} has subclasses {subclasses}: dispatch by isinstance again"


def test_iter_children_yields_nodes_in_lists_and_fields() -> None:
    module = cst.parse_module("f(a, *b, c=1)\n")
    call = module.body[0].body[0].value  # type: ignore[attr-defined]
    children = list(iter_children(call))
    assert [type(c).__name__ for c in children] == ["Name", "Arg", "Arg", "Arg"]
