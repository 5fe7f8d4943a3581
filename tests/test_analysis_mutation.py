"""The mutation analysis (`auditlint.analysis.mutation`) and JSON call recognition
(`auditlint.analysis.jsoncalls`) on their own."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from auditlint.analysis.jsoncalls import call_key, json_call, local_name_base
from auditlint.analysis.mutation import ScopeMutations, loop_region, prefix_related
from auditlint.analysis.walk import iter_descendants
from auditlint.config import Settings
from auditlint.context import FileContext, Frame


def _setup(source: str) -> tuple[FileContext, cst.FunctionDef, ScopeMutations]:
    module = cst.parse_module(textwrap.dedent(source))
    ctx = FileContext(module, "t.py", Settings())
    fn = next(n for n in module.body if isinstance(n, cst.FunctionDef) and n.name.value == "f")
    ctx.frames.append(Frame(fn))
    return ctx, fn, ScopeMutations(fn, ctx)


def _loop(fn: cst.FunctionDef) -> cst.CSTNode:
    return next(n for n in iter_descendants(fn) if isinstance(n, (cst.For, cst.While)))


def _varies(source: str, watched: str = "p") -> bool:
    _, fn, mm = _setup(source)
    return mm.may_change(cst.parse_expression(watched), loop_region(_loop(fn)))


HEADER = "import json\nSTATE = {}\ndef f(items, p, send, helper):\n    q = {}\n    for x in items:\n"


@pytest.mark.parametrize(
    ("body", "watched"),
    [
        ("send(x)", "p"),
        ("send(len(p), str(p.get('a')))", "p"),
        ("print(p['a'])", "p"),
        ("q['k'] = x", "p"),
        ("y = p['a']\n        send(y + 1)", "p"),
        ("p.other.append(x)", "p.payload"),
        ("print(x, json.dumps(STATE))", "STATE"),
        ("p.log.info(x)", "p.payload"),
        ("z = sorted(p)", "p"),
        ("send(f'{p}')", "p"),
    ],
)
def test_invariant(body: str, watched: str) -> None:
    assert not _varies(HEADER + "        " + body + "\n", watched)


@pytest.mark.parametrize(
    ("body", "watched"),
    [
        ("p = x", "p"),
        ("p['a'] = x", "p"),
        ("p.update(a=x)", "p"),
        ("del p['a']", "p"),
        ("p += [x]", "p"),
        ("send(p)", "p"),
        ("helper(p['a'])", "p"),
        ("r = p\n        r.append(x)", "p"),
        ("r = p['items']\n        r.append(x)", "p"),
        ("for r in p:\n            r.clear()", "p"),
        ("q['p'] = p", "p"),
        ("helper(x)", "STATE"),
        ("send(x, json.dumps(STATE))", "STATE"),
        ("p.payload['a'] = x", "p.payload"),
        ("p.reset()", "p.payload"),
        ("p.payload.x = 1", "p.payload"),
        ("with p:\n            pass", "p"),
        ("(p := x)", "p"),
        ("import p", "p"),
        ("def p():\n            pass", "p"),
        ("send(x, json.dumps(x.body()))", "x.body()"),
    ],
)
def test_varies(body: str, watched: str) -> None:
    assert _varies(HEADER + "        " + body + "\n", watched)


def test_loop_target_varies() -> None:
    assert _varies(HEADER + "        pass\n", "x")


def test_nested_function_mutation_counts_everywhere() -> None:
    source = "def f(items, send):\n    p = {}\n    def g():\n        p['a'] = 1\n    for x in items:\n        send(x)\n"
    assert _varies(source)


def test_nonlocal_rebinding_counts() -> None:
    source = (
        "def f(items, send):\n    p = {}\n    def g():\n        nonlocal p\n        p = {}\n"
        "    for x in items:\n        send(x)\n"
    )
    assert _varies(source)


def test_await_changes_shared_but_not_owned_values() -> None:
    shared = "async def f(items, p, send):\n    for x in items:\n        await send(x)\n"
    owned = "async def f(items, send):\n    p = {'a': 1}\n    for x in items:\n        await send(x)\n"
    assert _varies(shared)
    assert not _varies(owned)


def test_polling_loop_is_strict_for_shared_values() -> None:
    _, fn, mm = _setup(
        "import time\ndef f(self):\n    while True:\n        time.sleep(1)\n        self.tick()\n"
    )
    region = loop_region(_loop(fn))
    assert mm.may_change(cst.parse_expression("self.state"), region)
    assert mm.may_change(cst.parse_expression("self.state"), region[1:], strict_calls=True)


def test_result_is_private() -> None:
    source = (
        "import json\ndef f(items, s, out):\n    for x in items:\n        a = json.loads(s)\n"
        "        b = json.loads(s)\n        c = json.loads(s)\n        print(a['k'])\n        b['k'] = 1\n"
        "        out.append(c)\n"
    )
    _, fn, mm = _setup(source)
    calls = [
        n
        for n in iter_descendants(fn)
        if isinstance(n, cst.Call) and cst.Module([]).code_for_node(n) == "json.loads(s)"
    ]
    assert [mm.result_is_private(c) for c in calls] == [True, False, False]


def test_prefix_related() -> None:
    assert prefix_related((), (".a",))
    assert prefix_related((".a", "[]"), (".a",))
    assert not prefix_related((".a",), (".b",))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import json\njson.dumps(x)", ("json", "dumps")),
        ("import json as j\nj.loads(x)", ("json", "loads")),
        ("from json import dumps as d\nd(x)", ("json", "dumps")),
        ("import simplejson as json\njson.dumps(x)", ("simplejson", "dumps")),
        ("import orjson\norjson.loads(x)", ("orjson", "loads")),
        ("import ujson\nujson.encode(x)", ("ujson", "dumps")),
        ("import rapidjson\nrapidjson.dumps(x)", ("rapidjson", "dumps")),
        ("json.dumps(x)", None),
        ("import json\ndef g(json):\n    json.dumps(x)", None),
    ],
)
def test_json_call(source: str, expected: object) -> None:
    module = cst.parse_module(source + "\n")
    ctx = FileContext(module, "t.py", Settings())
    call = next(n for n in iter_descendants(module) if isinstance(n, cst.Call))
    for node in module.body:
        if isinstance(node, cst.FunctionDef):
            ctx.frames.append(Frame(node))
    found = json_call(call, ctx)
    assert (found and (found.library, found.kind)) == expected or (found is None and expected is None)


def test_call_key_and_names() -> None:
    module = cst.parse_module(
        "import json\njson.dumps( p ,indent=2, sort_keys=True)\njson.dumps(p, sort_keys=True, indent=2)\n"
    )
    ctx = FileContext(module, "t.py", Settings())
    calls = [json_call(n, ctx) for n in iter_descendants(module) if isinstance(n, cst.Call)]
    assert calls[0] and calls[1] and call_key(calls[0]) == call_key(calls[1])
    assert local_name_base(calls[0]) == "p_json"
