"""`auditlint.analysis.loops`: loop-carried names, derived names, early exits, mutated objects,
ordered resources, sleeps and limiters, on small snippets."""

from __future__ import annotations

import textwrap
from typing import Any, Callable, Optional

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlint.analysis.loops import (
    LoopFacts,
    acquires_limiter,
    contains_await,
    is_async_loop,
    is_sleep,
    local_defs,
    loop_facts,
    loop_targets,
    ordered_resource_in,
    rate_limited,
    shared_ordered_resource,
    words,
)
from auditlint.config import Settings
from auditlint.context import FileContext
from auditlint.engine import lint_tree
from auditlint.rule import Rule


def _first_loop(source: str) -> cst.CSTNode:
    module = cst.parse_module(textwrap.dedent(source).strip("\n") + "\n")
    found: list[cst.CSTNode] = []

    class Finder(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if not found and isinstance(
                node, (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.GeneratorExp)
            ):
                found.append(node)
            return not found

    module.visit(Finder())
    assert found, "no loop in the snippet"
    return found[0]


def _facts(source: str) -> LoopFacts:
    return loop_facts(_first_loop(source))


def _await_call(facts: LoopFacts, index: int = 0) -> cst.CSTNode:
    from auditlint.analysis.walk import iter_descendants

    awaits = [n for n in iter_descendants(facts.loop) if isinstance(n, cst.Await)]
    return awaits[index].expression


# ---- carried reads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "carried"),
    [
        ("for _ in range(3):\n    cursor = await fetch(cursor)", {"cursor"}),
        ("for x in xs:\n    y = x * 2\n    await f(y)", set()),
        ("for x in xs:\n    if x:\n        y = x\n    await f(y)", {"y"}),
        ("for x in xs:\n    if x:\n        y = 1\n    else:\n        y = 2\n    await f(y)", set()),
        ("for x in xs:\n    if not x:\n        continue\n    await f(x)", set()),
        ("for x in xs:\n    await f(acc)\n    acc += x", {"acc"}),
        ("for x in xs:\n    try:\n        y = g(x)\n    except E:\n        continue\n    await f(y)", set()),
        ("for x in xs:\n    try:\n        y = g(x)\n    except E:\n        pass\n    await f(y)", {"y"}),
        ("for x in xs:\n    x = await f(x)", set()),
        ("for x in xs:\n    with open(x) as fh:\n        await f(fh)", set()),
        ("for x in xs:\n    for y in x:\n        z = y\n    await f(z)", {"z"}),
        ("[(last := await f(last, x)) for x in xs]", {"last"}),
        ("[await f(x) for x in xs if x]", set()),
        ("while more:\n    more = await f(page)\n    page += 1", {"page"}),
    ],
)
def test_carried_reads(source: str, carried: set[str]) -> None:
    facts = _facts(source)
    assert set(facts.carried_reads(_await_call(facts))) == carried


def test_targets_and_async_loops() -> None:
    assert loop_targets(_first_loop("for a, (b, *c) in xs:\n    pass")) == {"a", "b", "c"}
    assert loop_targets(_first_loop("[x + y for x in xs for y in ys]")) == {"x", "y"}
    assert is_async_loop(_first_loop("async def f():\n    async for x in xs:\n        pass"))
    assert is_async_loop(_first_loop("async def f():\n    return [x async for x in xs]"))
    assert not is_async_loop(_first_loop("for x in xs:\n    pass"))


# ---- derived names, mutations, dependence --------------------------------------------------------


def test_derived_names_follow_assignments() -> None:
    facts = _facts(
        """
        for url in urls:
            response = await get(url)
            body = response.json()
            size = len(body)
            other = url.upper()
            async with session.get(url) as r:
                pass
        """
    )
    assert facts.derived_names(contains_await) == {"response", "body", "size"}
    assert facts.derived_names(contains_await, async_sources=True) == {"response", "body", "size", "r"}


@pytest.mark.parametrize(
    ("source", "dependent"),
    [
        ("for x in xs:\n    await visit(x, seen)\n    seen.add(x)", True),
        ("for x in xs:\n    out.append(await f(x))", False),
        ("for x in xs:\n    out.append(await f(x, out))", True),
        ("for x in xs:\n    results[x] = await f(x)", False),
        ("for _ in xs:\n    page = await self.fetch_page()\n    self.cursor = page.next", True),
        ("for x in xs:\n    r = await self.fetch(x)\n    self.results.append(r)", False),
        ("for x in xs:\n    await self.fetch(x)\n    self.count += 1", True),
        ("for item in items:\n    await save(item)\n    item.saved = True", False),
        ("for x in xs:\n    await f(x)", False),
    ],
)
def test_depends_on_earlier_iteration(source: str, dependent: bool) -> None:
    facts = _facts(source)
    reason = facts.depends_on_earlier_iteration(_await_call(facts), contains_await)
    assert (reason is not None) is dependent, reason


@pytest.mark.parametrize(
    ("source", "stops"),
    [
        ("for x in xs:\n    if await ok(x):\n        return x", True),
        ("for x in xs:\n    r = await f(x)\n    if r:\n        break", True),
        ("for x in xs:\n    await f(x)\n    break", True),
        ("for x in xs:\n    await f(x)\n    if x == 3:\n        break", False),
        ("for x in xs:\n    r = await f(x)\n    if x == 3:\n        return r", True),
        ("for x in xs:\n    for y in x:\n        if await f(y):\n            break", False),
        ("for x in xs:\n    for y in x:\n        if await f(y):\n            return y", True),
        ("for x in xs:\n    try:\n        await f(x)\n    except E:\n        break", True),
        ("for x in xs:\n    try:\n        g(x)\n    except E:\n        continue\n    await f(x)", False),
        ("for x in xs:\n    def inner():\n        return 1\n    await f(x)", False),
    ],
)
def test_stops_early_on(source: str, stops: bool) -> None:
    assert _facts(source).stops_early_on(contains_await) is stops


# ---- questions that need the file context --------------------------------------------------------


def _ask(source: str, question: Callable[[cst.Await, FileContext], Any]) -> list[Any]:
    """Answers of `question` at every `await` of the snippet, asked during the engine's walk."""
    answers: list[Any] = []

    class Probe(Rule):
        code = "AL999"
        name = "probe"

        def visit_Await(self, node: cst.Await, ctx: FileContext) -> None:
            answers.append(question(node, ctx))

    module = cst.parse_module(textwrap.dedent(source).strip("\n") + "\n")
    lint_tree(module, "probe.py", Settings(), [Probe])
    return answers


def _resource(node: cst.Await, ctx: FileContext) -> Optional[str]:
    use = ordered_resource_in(ctx, node.expression, frozenset({"item"}))
    return use.kind if use is not None else None


def test_ordered_resources_by_kind() -> None:
    answers = _ask(
        """
        import asyncio
        import asyncpg
        import aiohttp

        async def f(dsn, items, lock: asyncio.Lock, writer: asyncio.StreamWriter, ws, session, client, q, cur, event):
            conn = await asyncpg.connect(dsn)
            await conn.fetch("q")
            await save(conn, 1)
            await lock.acquire()
            await writer.drain()
            await ws.send("x")
            await session.get("u")
            async with aiohttp.ClientSession() as http:
                await http.get("u")
            await client.get("u")
            await q.put(1)
            await cur.execute("q")
            await item.save()
            await publish(event)
            await db.commit()
        """,
        _resource,
    )
    assert answers == [
        None,  # `asyncpg.connect(dsn)` itself: a module function, no receiver
        "connection",
        "connection",
        "lock",
        "stream",
        "websocket",
        "session",
        None,
        None,
        "queue",
        "cursor",
        None,
        None,
        "connection",
    ]


def test_sleeps_limiters_and_local_defs() -> None:
    answers = _ask(
        """
        import asyncio
        from asyncio import sleep as nap

        sem = asyncio.Semaphore(3)

        async def limited(x):
            async with sem:
                return x

        class Repo:
            async def save(self, row):
                await self.conn.execute("q", row)

            async def run(self, rows):
                for row in rows:
                    await nap(1)
                    await self._throttle()
                    await self.save(row)
                    await limited(row)
                    await fetch(row)
        """,
        lambda node, ctx: (
            is_sleep(ctx, node.expression) if isinstance(node.expression, cst.Call) else None,
            [d.name.value for d in local_defs(ctx, node.expression.func)]
            if isinstance(node.expression, cst.Call)
            else None,
        ),
    )
    assert answers[1:] == [
        (True, []),
        (True, []),
        (False, ["save"]),
        (False, ["limited"]),
        (False, []),
    ]


def test_shared_resources_and_limiters_of_local_functions() -> None:
    answers = _ask(
        """
        import asyncio

        sem = asyncio.Semaphore(3)

        async def limited(x):
            async with sem:
                return await work(x)

        async def own(dsn):
            conn = await connect(dsn)
            await conn.execute("q")

        class Repo:
            async def save(self, row):
                await self.conn.execute("q", row)

            async def run(self, rows):
                for row in rows:
                    await self.save(row)
                    await limited(row)
                    await own(row)
        """,
        lambda node, ctx: (
            [
                (acquires_limiter(ctx, d.body), shared_ordered_resource(ctx, d) is not None)
                for d in local_defs(ctx, node.expression.func)
            ],
            rate_limited(ctx, ctx.loops[-1]) if ctx.loops else None,
        ),
    )
    assert answers[-3:] == [
        ([(False, True)], False),
        ([(True, True)], False),
        ([(False, False)], False),
    ]


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("_dbConn", ["db", "conn"]),
        ("rate_limit", ["rate", "limit"]),
        ("HTTPClient", ["httpclient"]),
        ("ws", ["ws"]),
    ],
)
def test_words(identifier: str, expected: list[str]) -> None:
    assert words(identifier) == expected


# ---- robustness -------------------------------------------------------------------------------

_LINES = (
    "y = await f(x)",
    "if y:\n    break",
    "z += y",
    "acc = await g(acc, x)",
    "out.append(await h(x))",
    "try:\n    await f(x)\nexcept E:\n    continue",
    "with lock:\n    await f(x)",
    "for w in x:\n    y = w",
    "while y:\n    y -= 1",
    "seen.add(x)",
    "return y",
    "del y",
    "match x:\n    case 1:\n        y = 2",
    "def inner():\n    return y",
    "y = [v := await f(i) for i in x]",
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(_LINES), min_size=1, max_size=6), st.booleans())
def test_loop_facts_never_crash(lines: list[str], use_while: bool) -> None:
    header = "while x:" if use_while else "for x in xs:"
    body = "\n".join("        " + part for line in lines for part in line.split("\n"))
    source = f"async def fn(xs, x):\n    {header}\n{body}\n"
    loop = _first_loop(source)
    facts = loop_facts(loop, {})
    facts.carried_reads(loop)
    facts.depends_on_earlier_iteration(loop, contains_await)
    facts.stops_early_on(contains_await, async_sources=True)
    assert facts.derived_names(contains_await) <= facts.assigned | facts.targets
