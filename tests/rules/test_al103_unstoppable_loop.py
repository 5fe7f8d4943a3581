"""AL103: after `--fix --unsafe-fixes` a polling thread stops when its event is set (stdlib and
PeriodicJob forms) and a task that swallowed cancellation can be cancelled; generated loop bodies
are reported, fixed idempotently, and loops that can stop stay silent."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import assert_fix_proven, fix, lint

STYLES = ("stdlib", "runtime")

POLLER = (
    inspect.cleandoc(
        """
    import time

    calls = []

    def poll_forever():
        while True:
            calls.append(1)
            time.sleep(0.001)
    """
    )
    + "\n"
)

WORKER = (
    inspect.cleandoc(
        """
    import asyncio

    async def worker(state):
        while True:
            try:
                state.append(1)
                await asyncio.sleep(0.001)
            except:
                pass

    async def heartbeat(state):
        while True:
            try:
                await asyncio.sleep(0.001)
                state.append(1)
            except asyncio.CancelledError:
                pass
    """
    )
    + "\n"
)


def _namespace(code: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "al103_program"}
    exec(compile(code, "al103_program.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("style", STYLES)
def test_fixed_poller_stops_when_its_event_is_set(style: str) -> None:
    assert len(lint(POLLER, "AL103")) == 1
    fixed = fix(POLLER, "AL103", fix_style=style)
    assert lint(fixed, "AL103", fix_style=style) == []
    if style == "runtime":
        assert "PeriodicJob(" in fixed
    namespace = _namespace(fixed)
    thread = threading.Thread(target=namespace["poll_forever"], daemon=True)
    thread.start()
    for _ in range(1000):
        if len(namespace["calls"]) >= 3:
            break
        thread.join(0.01)
    assert len(namespace["calls"]) >= 3, "the fixed loop stopped doing its work"
    namespace["_stop_poll_forever"].set()
    thread.join(5)
    assert not thread.is_alive(), "the fixed loop did not stop when its event was set"


@pytest.mark.parametrize("name", ["worker", "heartbeat"])
def test_fixed_async_loop_can_be_cancelled(name: str) -> None:
    assert len(lint(WORKER, "AL103")) == 2
    fixed = fix(WORKER, "AL103")
    assert lint(fixed, "AL103") == []
    namespace = _namespace(fixed)

    async def scenario() -> bool:
        state: list[int] = []
        task = asyncio.create_task(namespace[name](state))
        while len(state) < 3:
            await asyncio.sleep(0.001)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        return bool(done) and task.cancelled()

    assert asyncio.run(scenario())


# ---- generated variants ------------------------------------------------------------------

STATEMENTS = (
    "refresh()",
    "data = fetch()\n{indent}store(data)",
    "count += 1",
    "for item in queue:\n{indent}    if item is None:\n{indent}        break\n{indent}    handle(item)",
    "try:\n{indent}    refresh()\n{indent}except Exception:\n{indent}    log.exception('failed')",
    "if not ready():\n{indent}    continue",
)
EXITS = (
    "if done():\n{indent}    break",
    "if done():\n{indent}    return",
    "if failed():\n{indent}    raise RuntimeError('x')",
    "if done():\n{indent}    sys.exit(0)",
    "yield fetch()",
)


def _loop_program(statements: list[str], test: str, sleep: str, method: bool) -> str:
    indent = "            " if method else "        "
    body = [*statements, f"{sleep}(interval)"]
    text = "\n".join(indent + s.replace("{indent}", indent) for s in body)
    outer = indent[:-4]
    header = "import sys\nimport time\nfrom time import sleep\n\n"
    loop = f"{outer}count = 0\n{outer}while {test}:\n{text}\n"
    if method:
        return header + f"class Job:\n    def run(self, interval, queue):\n{loop}"
    return header + f"def run(interval, queue):\n{loop}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    statements=st.lists(st.sampled_from(STATEMENTS), min_size=0, max_size=4),
    test=st.sampled_from(("True", "1")),
    sleep=st.sampled_from(("time.sleep", "sleep")),
    method=st.booleans(),
    style=st.sampled_from(STYLES),
)
def test_forever_loops_are_reported_and_fixed_idempotently(
    statements: list[str], test: str, sleep: str, method: bool, style: str
) -> None:
    code = _loop_program(statements, test, sleep, method)
    assert len(lint(code, "AL103", fix_style=style)) == 1, code
    fixed = fix(code, "AL103", fix_style=style)
    assert fixed != code
    assert_fix_proven(code, fixed, "AL103", fix_style=style)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    statements=st.lists(st.sampled_from(STATEMENTS), min_size=0, max_size=3),
    exit_=st.sampled_from(EXITS),
    position=st.integers(min_value=0, max_value=3),
    method=st.booleans(),
)
def test_loops_that_can_stop_are_silent(
    statements: list[str], exit_: str, position: int, method: bool
) -> None:
    body = list(statements)
    body.insert(min(position, len(body)), exit_)
    code = _loop_program(body, "True", "time.sleep", method)
    assert lint(code, "AL103") == [], code
