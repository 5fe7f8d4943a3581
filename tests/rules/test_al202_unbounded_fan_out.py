"""AL202: the fixed program gives the same results (in order, `return_exceptions` kept) as the
unbounded gather, in both fix styles, and never runs more than the limit at once (counted);
generated gathers never crash the rule and its fixes are stable."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import assert_fix_proven, fix, lint

LIMIT = 4

PROGRAM = (
    inspect.cleandoc(
        """
    import asyncio
    from asyncio import gather

    state = {"active": 0, "peak": 0, "calls": 0}

    async def work(x):
        state["active"] += 1
        state["calls"] += 1
        state["peak"] = max(state["peak"], state["active"])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        state["active"] -= 1
        return x * 3

    async def risky(x):
        value = await work(x)
        if x % 5 == 4:
            raise ValueError(x)
        return value

    async def generator(items):
        return await asyncio.gather(*(work(x) for x in items))

    async def listed(items):
        return await gather(*[risky(x) for x in items], return_exceptions=True)

    async def mapped(items):
        return await asyncio.gather(*map(work, items))

    async def appended(items):
        pending = []
        for x in items:
            pending.append(risky(x))
        return await asyncio.gather(*pending, return_exceptions=True)

    async def failing(items):
        return await asyncio.gather(*(risky(x) for x in items))
    """
    )
    + "\n"
)
SHAPES = ("generator", "listed", "mapped", "appended", "failing")


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, BaseException):
        return (type(value).__name__, value.args)
    return value


def _run(source: str, shape: str, items: list[int]) -> tuple[Any, dict[str, int]]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "example.py", "exec"), namespace)

    async def main() -> Any:
        try:
            return _plain(await namespace[shape](items))
        except ValueError as exc:
            return ("raised", type(exc).__name__)

    result = asyncio.run(main())
    return result, dict(namespace["state"])


@pytest.fixture(scope="module", params=["stdlib", "runtime"])
def fixed_program(request: pytest.FixtureRequest) -> tuple[str, str]:
    style: str = request.param
    options = {"max-concurrency": LIMIT}
    findings = lint(PROGRAM, "AL202", options=options, fix_style=style)
    assert len(findings) == len(SHAPES)
    assert all(f.fix is not None and f.fix.applicability.value == "unsafe" for f in findings)
    fixed = fix(PROGRAM, "AL202", options=options, fix_style=style)
    assert_fix_proven(PROGRAM, fixed, "AL202", options=options, fix_style=style)
    return style, fixed


# A failing gather leaves coroutines that never started (stdlib style): Python warns at exit.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited")
@pytest.mark.parametrize("shape", SHAPES)
def test_same_results_and_never_above_the_limit(fixed_program: tuple[str, str], shape: str) -> None:
    _, fixed = fixed_program
    items = list(range(20))
    before, before_state = _run(PROGRAM, shape, items)
    after, after_state = _run(fixed, shape, items)
    assert after == before
    if shape != "failing":
        assert before_state["calls"] == after_state["calls"] == len(items)
        assert before_state["peak"] == len(items)
    assert 1 < after_state["peak"] <= LIMIT


def test_fixed_code_is_not_reported_by_al201(fixed_program: tuple[str, str]) -> None:
    style, fixed = fixed_program
    assert [f for f in lint(fixed, "AL201", fix_style=style) if f.fix is not None] == []


def test_a_gather_used_as_a_future_is_reported_without_a_fix() -> None:
    source = inspect.cleandoc(
        """
        import asyncio

        async def run(items):
            future = asyncio.gather(*(work(x) for x in items))
            future.add_done_callback(print)
            return await future
        """
    )
    findings = lint(source, "AL202")
    assert len(findings) == 1 and findings[0].fix is None


# ---- generated gathers --------------------------------------------------------------------------

_COLLECTIONS = (
    "*(work(x) for x in items)",
    "*[work(x) for x in items if x]",
    "*map(work, items)",
    "*coros",
    "*(work(x) for x in (1, 2, 3))",
    "*(work(x) for x in items[:10])",
    "*[asyncio.create_task(work(x)) for x in items]",
    "*(bounded(x) for x in items)",
    "work(1), work(2)",
    "*(work(x) for x in items), work(0)",
)
_KEYWORDS = ("", ", return_exceptions=True", ", return_exceptions=False")
_PREFIX = ("return await ", "results = await ", "await ", "future = ")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    collection=st.sampled_from(_COLLECTIONS),
    keywords=st.sampled_from(_KEYWORDS),
    prefix=st.sampled_from(_PREFIX),
    alias=st.sampled_from(["asyncio.gather", "aio.gather", "gather"]),
    style=st.sampled_from(["stdlib", "runtime"]),
    limit=st.integers(min_value=1, max_value=50),
)
def test_generated_gathers(
    collection: str, keywords: str, prefix: str, alias: str, style: str, limit: int
) -> None:
    source = (
        inspect.cleandoc(
            f"""
            import asyncio
            import asyncio as aio
            from asyncio import gather

            sem = asyncio.Semaphore(2)

            async def bounded(x):
                async with sem:
                    return await work(x)

            async def run(items, coros):
                {prefix}{alias}({collection}{keywords})
            """
        )
        + "\n"
    )
    options = {"max-concurrency": limit}
    findings = lint(source, "AL202", options=options, fix_style=style)
    spawned = collection == _COLLECTIONS[6]  # reported at the `create_task`, not the gather
    unbounded = collection in _COLLECTIONS[:3] or collection == _COLLECTIONS[-1] or spawned
    assert len(findings) == (1 if unbounded else 0)
    if findings and (prefix == "future = " or collection == _COLLECTIONS[-1] or spawned):
        assert findings[0].fix is None, "only an awaited gather of one collection is rewritten"
    fixed = fix(source, "AL202", options=options, fix_style=style)
    if fixed != source:
        assert_fix_proven(source, fixed, "AL202", options=options, fix_style=style)
        assert lint(fixed, "AL202", options=options, fix_style=style) == []
        assert f"limit={limit}" in fixed or f"Semaphore({limit})" in fixed
