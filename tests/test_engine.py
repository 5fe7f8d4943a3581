"""The engine and its context: name resolution, bindings, walk stacks, suppressions, encodings,
crash isolation, and a property test that generated programs never crash it."""

from __future__ import annotations

from typing import Any, ClassVar

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlint.api import fix_source, lint_source
from auditlint.config import Settings
from auditlint.context import FileContext
from auditlint.engine import lint_tree, prefilter
from auditlint.registry import all_rule_classes
from auditlint.rule import Rule


class Probe(Rule):
    """Records what the context says at every call."""

    code = "AL999"
    name = "probe"
    seen: ClassVar[list[dict[str, Any]]] = []

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        Probe.seen.append(
            {
                "code": ctx.code(node.func),
                "qual": ctx.qualname(node.func),
                "target": ctx.resolve_call_target(node.func),
                "loops": len(ctx.loops),
                "async": ctx.in_async_function,
                "withs": len(ctx.withs),
                "trys": len(ctx.trys),
            }
        )


def probe(source: str) -> dict[str, dict[str, Any]]:
    Probe.seen = []
    lint_tree(cst.parse_module(source), "m.py", Settings(), [Probe])
    return {s["code"]: s for s in Probe.seen}


def test_qualnames_through_aliases_and_shadowing() -> None:
    seen = probe(
        "import asyncio as aio\nfrom asyncio import create_task as ct\nimport os.path\n"
        "aio.sleep(1)\nct(x)\nos.path.join('a')\n"
        "def f(aio):\n    aio.gather()\n"
        "def g():\n    import json as j\n    j.dumps(1)\n"
        "aio.get_running_loop().create_task(c)\n"
    )
    assert seen["aio.sleep"]["qual"] == "asyncio.sleep"
    assert seen["ct"]["qual"] == "asyncio.create_task"
    assert seen["os.path.join"]["qual"] == "os.path.join"
    assert seen["aio.gather"]["qual"] is None, "a parameter shadows the import"
    assert seen["j.dumps"]["qual"] == "json.dumps"
    assert seen["aio.get_running_loop().create_task"]["qual"] == "asyncio.get_running_loop().create_task"


def test_simple_bindings_are_followed() -> None:
    seen = probe(
        "import requests\n"
        "class C:\n    def __init__(self):\n        self.s = requests.Session()\n"
        "    def m(self):\n        self.s.get('u')\n"
        "def f():\n    s = requests.Session()\n    s.get('u')\n    s = object()\n    s.post('u')\n"
        "async def g():\n    async with requests.Session() as t:\n        t.put('u')\n"
    )
    assert seen["self.s.get"]["target"] == "requests.Session().get"
    assert seen["s.get"]["target"] == "requests.Session().get"
    assert seen["s.post"]["target"] is None, "the later binding is not a Session"
    assert seen["t.put"]["target"] == "requests.Session().put"


def test_walk_stacks() -> None:
    seen = probe(
        "async def f(xs):\n"
        "    for x in it():\n"
        "        a(x)\n"
        "        def inner():\n            b()\n"
        "        [c(y) for y in d()]\n"
        "    while e():\n        pass\n"
        "    with g() as h:\n        try:\n            k()\n        finally:\n            m()\n"
    )
    assert seen["it"]["loops"] == 0, "a for loop's iterable runs once"
    assert seen["a"]["loops"] == 1 and seen["a"]["async"]
    assert seen["b"]["loops"] == 0 and not seen["b"]["async"], "a nested def starts a new frame"
    assert seen["c"]["loops"] == 2 and seen["d"]["loops"] == 1
    assert seen["e"]["loops"] == 1, "a while test runs every iteration"
    assert seen["k"]["withs"] == 1 and seen["k"]["trys"] == 1
    assert seen["m"]["trys"] == 0 and seen["g"]["withs"] == 0


def test_prefilter_skips_files_without_triggers() -> None:
    classes = all_rule_classes()
    assert prefilter(b"x = 1\n", [c for c in classes if c.triggers]) == []
    assert [c.code for c in prefilter(b"import requests\n", classes) if c.code == "AL401"] == ["AL401"]


class Crashing(Rule):
    """Raises on every call."""

    code = "AL998"
    name = "crashing"

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        raise ValueError("boom")


def test_a_crashing_rule_is_isolated() -> None:
    from auditlint.engine import _Walker

    module = cst.parse_module("import requests\nrequests.get('u')\n")
    ctx = FileContext(module, "m.py", Settings())
    from auditlint.registry import rule_class

    walker = _Walker(ctx, [Crashing(), rule_class("AL401")()])
    walker.walk(module)
    assert [c.rule.code for c in walker.crashed] == ["AL998"]
    assert [r.rule.code for r in ctx.reports] == ["AL401"]


@pytest.mark.parametrize(
    "raw",
    [
        b"\xef\xbb\xbfimport requests\r\nrequests.get('u')\r\n",
        b"# -*- coding: latin-1 -*-\nimport requests\nrequests.get('caf\xe9')\n",
        b"import requests\nrequests.get('u')",
        b"import requests\r\nx = 1\nrequests.get('u')\r\n",
        b"import requests\nif True:\n\trequests.get('u')\n",
    ],
)
def test_fix_keeps_encoding_bom_and_line_endings(raw: bytes) -> None:
    from auditlint.fixer import fix_bytes

    out = fix_bytes(raw, "m.py", Settings(), ["AL401"], unsafe=True).new_source
    assert out == raw.replace(b"get('u')", b"get('u', timeout=10)").replace(b"get('caf\xe9')", b"get('caf\xe9', timeout=10)")


def test_syntax_error_raises_in_api() -> None:
    with pytest.raises(SyntaxError):
        lint_source("def f(:\n", "m.py")


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_generated_programs_never_crash_the_engine(data: st.DataObject) -> None:
    import hypothesmith

    source = data.draw(hypothesmith.from_grammar())
    try:
        cst.parse_module(source)
    except Exception:  # noqa: BLE001 - only programs LibCST accepts are interesting here
        return
    findings = lint_source(source, "gen.py")
    fixed = fix_source(source, "gen.py", unsafe=True)
    cst.parse_module(fixed)
    assert all(f.line >= 1 and f.column >= 1 for f in findings)
    assert fix_source(fixed, "gen.py", unsafe=True) == fixed
