"""AL201: the fixed program gives the same results as the loop it replaces, in both fix styles,
and runs calls together (counted: 1 at a time before, more than 1 and never above the limit
after); generated loop bodies never crash the rule, and its fixes are stable and never give
code AL202 reports."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import assert_fix_proven, fix, lint

LIMIT = 3

#: `work` counts how many calls are in flight at once; it yields to the event loop twice, so
#: overlapping calls really overlap. The shapes the fix handles each have a loop of their own.
PROGRAM = (
    inspect.cleandoc(
        """
    import asyncio

    state = {"active": 0, "peak": 0, "calls": 0}

    async def work(x):
        state["active"] += 1
        state["calls"] += 1
        state["peak"] = max(state["peak"], state["active"])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        state["active"] -= 1
        return x * 2

    async def plain(items):
        for item in items:
            await work(item)
        return None

    async def collect(items):
        out = []
        for item in items:
            out.append(await work(item))
        return out

    async def comprehension(items):
        return [await work(item) for item in items]

    async def assign(items):
        total = 0
        seen = []
        for item in items:
            doubled = await work(item)
            if doubled % 4 == 0:
                continue
            total += doubled
            seen.append((item, doubled))
        return total, seen
    """
    )
    + "\n"
)
SHAPES = ("plain", "collect", "comprehension", "assign")


def _run(source: str, shape: str, items: list[int]) -> tuple[Any, dict[str, int]]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "example.py", "exec"), namespace)
    result = asyncio.run(namespace[shape](items))
    return result, dict(namespace["state"])


@pytest.fixture(scope="module", params=["stdlib", "runtime"])
def fixed_program(request: pytest.FixtureRequest) -> tuple[str, str]:
    style: str = request.param
    findings = lint(PROGRAM, "AL201", options={"max-concurrency": LIMIT}, fix_style=style)
    assert len(findings) == len(SHAPES)
    assert all(f.fix is not None and f.fix.applicability.value == "unsafe" for f in findings)
    fixed = fix(PROGRAM, "AL201", options={"max-concurrency": LIMIT}, fix_style=style)
    assert_fix_proven(PROGRAM, fixed, "AL201", options={"max-concurrency": LIMIT}, fix_style=style)
    marker = "gather_bounded(" if style == "runtime" else "asyncio.Semaphore(3)"
    assert fixed.count(marker) == len(SHAPES)
    return style, fixed


@pytest.mark.parametrize("shape", SHAPES)
def test_same_results_and_bounded_concurrency(fixed_program: tuple[str, str], shape: str) -> None:
    _, fixed = fixed_program
    items = list(range(12))
    before, before_state = _run(PROGRAM, shape, items)
    after, after_state = _run(fixed, shape, items)
    assert after == before
    assert before_state["calls"] == after_state["calls"] == len(items)
    assert before_state["peak"] == 1
    assert 1 < after_state["peak"] <= LIMIT


def test_fixed_code_is_not_reported_by_al202(fixed_program: tuple[str, str]) -> None:
    style, fixed = fixed_program
    assert lint(fixed, "AL202", fix_style=style) == []


def test_one_connection_is_never_shared_by_the_fix() -> None:
    source = inspect.cleandoc(
        """
        import asyncpg

        async def save(dsn, rows):
            conn = await asyncpg.connect(dsn)
            for row in rows:
                await conn.execute("INSERT INTO t VALUES ($1)", row)
            for row in rows:
                await write_row(conn, row)
            pool = await asyncpg.create_pool(dsn)
            async with pool.acquire() as db:
                for row in rows:
                    await db.fetchrow("SELECT $1", row)
        """
    )
    assert lint(source, "AL201") == []


def test_the_awaited_results_feed_the_next_call() -> None:
    source = inspect.cleandoc(
        """
        async def walk(start, n):
            node = start
            for _ in range(n):
                node = await next_node(node)
            token = None
            for page in range(n):
                body = await fetch(page, token)
                token = body.token
            return node
        """
    )
    assert lint(source, "AL201") == []


# ---- generated loop bodies --------------------------------------------------------------------

_STATEMENTS: tuple[tuple[str, ...], ...] = (
    ("await work(item)",),
    ("out.append(await work(item))",),
    ("r = await work(item)",),
    ("total += r",),
    ("total += await work(item)",),
    ("cursor = await page(cursor)",),
    ("if r:", "    break"),
    ("if item:", "    continue"),
    ("if await ready(item):", "    return item"),
    ("await asyncio.sleep(0)",),
    ("await conn.execute(item)",),
    ("seen.add(item)",),
    ("await visit(item, seen)",),
    ("async with lock:", "    await work(item)"),
    ("results[item] = await work(item)",),
    ("print(r)",),
    ("try:", "    await work(item)", "except OSError:", "    break"),
    ("x = [await work(i) for i in item]",),
)
#: Any of these makes every iteration wait for the one before: the loop must stay silent.
_SILENCING = {_STATEMENTS[8], _STATEMENTS[9], _STATEMENTS[16]}


def _program(body: list[tuple[str, ...]], header: str) -> str:
    lines = ["import asyncio", "", "async def run(items, conn, lock, page, ready, visit):"]
    lines.append("    out, seen, results, total, r, cursor = [], set(), {}, 0, None, None")
    lines.append(f"    {header}")
    lines += [f"        {line}" for stmt in body for line in stmt]
    lines.append("    return out, total")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(st.sampled_from(_STATEMENTS), min_size=1, max_size=4),
    header=st.sampled_from(["for item in items:", "async for item in items:", "while items:"]),
    style=st.sampled_from(["stdlib", "runtime"]),
)
def test_generated_bodies_never_crash_and_fixes_are_stable(
    body: list[tuple[str, ...]], header: str, style: str
) -> None:
    source = _program(body, header)
    compile(source, "gen.py", "exec", dont_inherit=True)
    findings = lint(source, "AL201", fix_style=style)
    if header != "for item in items:" or _SILENCING & set(body):
        # The comprehension is a loop of its own, judged by itself.
        assert [f for f in findings if "for i in item" not in f.source_line] == []
    fixed = fix(source, "AL201", fix_style=style)
    if fixed != source:
        assert_fix_proven(source, fixed, "AL201", fix_style=style)
        assert lint(fixed, "AL202", fix_style=style) == []
