"""AL102: a program with dropped timers fires the same callbacks after `--fix` in both fix styles,
and after the fix its timers, including a self re-arming chain, can be cancelled through the
registry the fix keeps them in; the fix is stable over generated variants."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlint.runtime import default_registry
from tests.helpers import assert_fix_proven, fix, lint

STYLES = ("stdlib", "runtime")

PROGRAM = (
    inspect.cleandoc(
        """
    import asyncio
    import threading
    from threading import Timer

    fired = []
    thread_fired = threading.Event()

    def note(what):
        fired.append(what)

    def note_thread(what):
        fired.append(what)
        thread_fired.set()

    def start_thread_timers():
        threading.Timer(0.001, note_thread, args=("thread",)).start()
        t = Timer(0.001, note, args=("local",))
        t.daemon = True
        t.start()

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.001, note, "later")
        handle = loop.call_at(loop.time() + 0.001, note, "at")
        _ = asyncio.get_running_loop().call_later(0.001, note, "underscore")
        start_thread_timers()
        while len(fired) < 5:
            await asyncio.sleep(0.001)
        return sorted(fired)
    """
    )
    + "\n"
)

#: A self re-arming chain and long timers that nothing in the original could cancel.
CHAIN = (
    inspect.cleandoc(
        """
    import asyncio
    import threading

    ticks = []

    class Poller:
        def __init__(self):
            self.loop = asyncio.get_running_loop()

        def tick(self):
            ticks.append(1)
            self.loop.call_later(0.001, self.tick)

    def never():
        ticks.append("never")

    def arm_thread_timer():
        threading.Timer(3600, never).start()

    async def arm():
        Poller().tick()
        asyncio.get_running_loop().call_later(3600, never)
        arm_thread_timer()
        while len(ticks) < 3:
            await asyncio.sleep(0.001)
    """
    )
    + "\n"
)


def _namespace(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "al102_program"}
    exec(compile(code, "al102_program.py", "exec"), namespace)
    return namespace


def test_program_is_reported_once_per_dropped_timer() -> None:
    assert len(lint(PROGRAM, "AL102")) == 5
    assert len(lint(CHAIN, "AL102")) == 3


@pytest.mark.parametrize("style", STYLES)
def test_fixed_program_fires_the_same_callbacks(style: str) -> None:
    fixed = fix(PROGRAM, "AL102", fix_style=style)
    assert fixed != PROGRAM
    assert lint(fixed, "AL102", fix_style=style) == []
    expected = ["at", "later", "local", "thread", "underscore"]
    for code in (PROGRAM, fixed):
        namespace = _namespace(code)
        assert asyncio.run(asyncio.wait_for(namespace["main"](), 10)) == expected
        assert namespace["thread_fired"].wait(10)


def _cancel_all(style: str, namespace: dict[str, Any]) -> None:
    if style == "runtime":
        default_registry.cancel_all()
        return
    for name in ("_timers", "_timer_handles"):
        for handle in list(namespace[name]):
            handle.cancel()


@pytest.mark.parametrize("style", STYLES)
def test_fixed_timers_can_be_cancelled(style: str) -> None:
    fixed = fix(CHAIN, "AL102", fix_style=style)
    namespace = _namespace(fixed)
    before = set(threading.enumerate())

    async def scenario() -> tuple[int, int]:
        await namespace["arm"]()
        _cancel_all(style, namespace)
        count = len(namespace["ticks"])
        for _ in range(20):
            await asyncio.sleep(0.001)
        return count, len(namespace["ticks"])

    count, later = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert later == count, "the re-arming chain kept running after it was cancelled"
    assert "never" not in namespace["ticks"]
    for thread in set(threading.enumerate()) - before:
        thread.join(5)
        assert not thread.is_alive(), "a cancelled threading.Timer is still waiting"


# ---- generated variants ------------------------------------------------------------------

TIMER_DROPS = (
    "threading.Timer({delay}, {cb}).start()",
    "Timer({delay}, {cb}).start()",
    "t = threading.Timer({delay}, {cb})\n{indent}t.start()",
    "t = Timer({delay}, {cb})\n{indent}t.daemon = True\n{indent}t.start()",
)
LOOP_DROPS = (
    "{loop}.call_later({delay}, {cb})",
    "_ = {loop}.call_later({delay}, {cb})",
    "h = {loop}.call_at({loop}.time() + {delay}, {cb})",
)
KEEPS = (
    "return threading.Timer({delay}, {cb})",
    "t = Timer({delay}, {cb})\n{indent}t.start()\n{indent}return t",
    "t = threading.Timer({delay}, {cb})\n{indent}t.start()\n{indent}t.cancel()",
    "return {loop}.call_later({delay}, {cb})",
    "h = {loop}.call_later({delay}, {cb})\n{indent}h.cancel()",
    "registry.append({loop}.call_at({delay}, {cb}))",
)
LOOPS = ("asyncio.get_running_loop()", "loop", "self.loop")


def _timer_program(body: str, loop: str, cb: str, delay: str, method: bool) -> str:
    indent = "        " if method else "    "
    text = body.format(loop=loop, cb=cb, delay=delay, indent=indent)
    text = "\n".join(indent + line.lstrip() for line in text.splitlines())
    header = "import asyncio\nimport threading\nfrom threading import Timer\n\n"
    if method:
        return header + f"class Service:\n    def tick(self, loop, registry):\n{text}\n"
    return header + f"def tick(self, loop, registry):\n{text}\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.sampled_from(TIMER_DROPS + LOOP_DROPS),
    loop=st.sampled_from(LOOPS),
    cb=st.sampled_from(("print", "tick", "self.tick")),
    delay=st.sampled_from(("5", "0.5", "interval")),
    method=st.booleans(),
    style=st.sampled_from(STYLES),
)
def test_dropped_timer_variants_are_reported_and_fixed_idempotently(
    body: str, loop: str, cb: str, delay: str, method: bool, style: str
) -> None:
    code = _timer_program(body, loop, cb, delay, method)
    assert len(lint(code, "AL102", fix_style=style)) == 1, code
    fixed = fix(code, "AL102", fix_style=style)
    assert fixed != code
    assert_fix_proven(code, fixed, "AL102", fix_style=style)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.sampled_from(KEEPS),
    loop=st.sampled_from(LOOPS),
    cb=st.sampled_from(("print", "tick")),
    method=st.booleans(),
)
def test_kept_timer_variants_are_silent(body: str, loop: str, cb: str, method: bool) -> None:
    code = _timer_program(body, loop, cb, "5", method)
    assert lint(code, "AL102") == [], code
