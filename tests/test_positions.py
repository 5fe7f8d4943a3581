"""The engine's targeted positions equal LibCST's PositionProvider, node for node."""

from __future__ import annotations

import random
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from auditlint.positions import positions_of
from tests.conftest import ROOT

SOURCES = sorted((ROOT / "auditlint" / "rules").glob("al*.py"))[:6] + sorted((ROOT / "fixtures").rglob("*.py"))[:40]

ODD = [
    "x = 1",  # no trailing newline
    "if x:\r\n    y = (1 +\r\n         2)\r\n",  # CRLF, parentheses
    "def f():\n\tpass\n",  # tabs
    "class A: pass\n\n\n# trailing comment\n",
    "@d\n@e(1)\nasync def f(a, /, b=2, *c, **d) -> int:\n    return [await g(i) for i in a if i]\n",
    "s = '''a\nb''' f'{x!r:>{w}}'\n",
    "",
]


def _check(module: cst.Module, sample: int) -> None:
    ref = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    nodes = list(ref)
    assert positions_of(module, nodes) == dict(ref)
    rng = random.Random(len(nodes))
    for _ in range(sample):
        few = rng.sample(nodes, min(3, len(nodes)))
        assert positions_of(module, few) == {n: ref[n] for n in few}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_real_files(path: Path) -> None:
    try:
        module = cst.parse_module(path.read_bytes())
    except cst.ParserSyntaxError:
        pytest.skip("deliberately broken fixture")
    _check(module, 5)


@pytest.mark.parametrize("code", ODD)
def test_odd_layouts(code: str) -> None:
    _check(cst.parse_module(code), 10)


def test_nodes_outside_the_module_are_left_out() -> None:
    module = cst.parse_module("x = 1\n")
    stranger = cst.Name("y")
    assert positions_of(module, [stranger]) == {}
    assert positions_of(module, []) == {}
