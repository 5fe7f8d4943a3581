"""AL101: a program that drops its tasks gives the same results after `--fix` in both fix styles,
the fixed program keeps a pending task alive through a garbage collection the original loses it
to, and the fix is stable over generated variants of imports, callees and drop forms."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import assert_fix_proven, fix, lint

STYLES = ("stdlib", "runtime")

#: Every drop form the rule reports, in one program; `results` records what ran.
PROGRAM = (
    inspect.cleandoc(
        """
    import asyncio
    import asyncio as aio
    from asyncio import create_task

    results = []

    async def work(i):
        await asyncio.sleep(0)
        results.append(i)

    class Dispatcher:
        def __init__(self, loop):
            self.loop = loop

        def dispatch(self, i):
            self.loop.create_task(work(i))

    async def main():
        loop = asyncio.get_running_loop()
        asyncio.create_task(work(1))
        create_task(work(2))
        _ = aio.ensure_future(work(3))
        pending = loop.create_task(work(4))
        [asyncio.create_task(work(i)) for i in (5, 6)]
        asyncio.create_task(work(7)).add_done_callback(lambda t: results.append("cb"))
        Dispatcher(loop).dispatch(8)
        for _ in range(5):
            await asyncio.sleep(0)
        return sorted(map(str, results))
    """
    )
    + "\n"
)

#: A task parked on a future nothing else references: only a strong reference keeps it.
ORPHAN = (
    inspect.cleandoc(
        """
    import asyncio
    import gc
    import weakref

    async def stuck():
        await asyncio.get_running_loop().create_future()

    async def main():
        asyncio.create_task(stuck())
        await asyncio.sleep(0)
        me = asyncio.current_task()
        refs = [weakref.ref(t) for t in asyncio.all_tasks() if t is not me]
        gc.collect()
        alive = [r() for r in refs if r() is not None]
        for task in alive:
            task.cancel()
        await asyncio.sleep(0)
        return len(alive)
    """
    )
    + "\n"
)


def _run(code: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "al101_program"}
    exec(compile(code, "al101_program.py", "exec"), namespace)
    return asyncio.run(namespace["main"]())


def test_program_is_reported_once_per_dropped_task() -> None:
    assert len(lint(PROGRAM, "AL101")) == 7


@pytest.mark.parametrize("style", STYLES)
def test_fixed_program_gives_the_same_results(style: str) -> None:
    fixed = fix(PROGRAM, "AL101", fix_style=style)
    assert fixed != PROGRAM
    assert lint(fixed, "AL101", fix_style=style) == []
    expected = ["1", "2", "3", "4", "5", "6", "7", "8", "cb"]
    assert _run(PROGRAM) == expected
    assert _run(fixed) == expected


@pytest.mark.parametrize("style", STYLES)
def test_fixed_program_keeps_the_task_alive(style: str) -> None:
    assert len(lint(ORPHAN, "AL101")) == 1
    fixed = fix(ORPHAN, "AL101", fix_style=style)
    assert _run(ORPHAN) == 0, "the dropped task should be garbage-collected before the fix"
    assert _run(fixed) == 1, "the fix should keep the pending task alive"


# ---- generated variants ------------------------------------------------------------------

IMPORTS = {
    "asyncio": ("import asyncio", "asyncio.create_task", "asyncio.ensure_future"),
    "alias": ("import asyncio as aio", "aio.create_task", "aio.ensure_future"),
    "from": ("from asyncio import create_task, ensure_future", "create_task", "ensure_future"),
}
DROPS = {
    "statement": "{call}",
    "underscore": "_ = {call}",
    "local": "handle = {call}",
    "chain": "{call}.add_done_callback(print)",
    "comprehension": "[{call} for _x in range(2)]",
}
KEEPS = ("return {call}", "await {call}", "self_tasks.append({call})", "kept = {call}\n{indent}return kept")


def _call(imports: str, callee: str) -> str:
    _, create, ensure = IMPORTS[imports]
    if callee == "create_task":
        return f"{create}(work())"
    if callee == "ensure_future":
        return f"{ensure}(work())"
    return "asyncio.get_running_loop().create_task(work())"


def _program(imports: str, callee: str, body: str, container: str) -> str:
    header = IMPORTS[imports][0]
    if callee == "loop" and imports != "asyncio":
        header += "\nimport asyncio"
    if container == "method":
        indent = "        "
        head = "class Service:\n    async def run(self, self_tasks):\n"
    elif container == "nested":
        indent = "        "
        head = "def outer(self_tasks):\n    async def run():\n"
    else:
        indent = "    "
        head = "async def run(self_tasks):\n"
    lines = body.replace("{indent}", indent).splitlines()
    text = "\n".join(indent + line.lstrip() for line in lines)
    tail = "    return run\n" if container == "nested" else ""
    return f"{header}\n\nasync def work():\n    return 1\n\n{head}{text}\n{tail}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    imports=st.sampled_from(sorted(IMPORTS)),
    callee=st.sampled_from(("create_task", "ensure_future", "loop")),
    drop=st.sampled_from(sorted(DROPS)),
    container=st.sampled_from(("function", "method", "nested")),
    style=st.sampled_from(STYLES),
)
def test_dropped_variants_are_reported_and_fixed_idempotently(
    imports: str, callee: str, drop: str, container: str, style: str
) -> None:
    code = _program(imports, callee, DROPS[drop].format(call=_call(imports, callee)), container)
    findings = lint(code, "AL101", fix_style=style)
    assert len(findings) == 1, code
    fixed = fix(code, "AL101", fix_style=style)
    assert fixed != code
    assert_fix_proven(code, fixed, "AL101", fix_style=style)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    imports=st.sampled_from(sorted(IMPORTS)),
    callee=st.sampled_from(("create_task", "ensure_future", "loop")),
    keep=st.sampled_from(KEEPS),
    container=st.sampled_from(("function", "method", "nested")),
)
def test_kept_variants_are_silent(imports: str, callee: str, keep: str, container: str) -> None:
    code = _program(imports, callee, keep.format(call=_call(imports, callee), indent="{indent}"), container)
    assert lint(code, "AL101") == [], code
