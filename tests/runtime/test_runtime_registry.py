"""track()/Registry: 10,000 tasks and timers started and cancelled leave nothing behind."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable

import pytest

from auditlint.runtime import Registry, default_registry, metrics, track

N_THREAD_TIMERS = 2_000
N_TASKS = 4_000
N_HANDLES = 4_000


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_ten_thousand_timers_and_tasks_cancelled_leave_nothing_behind() -> None:
    threads_before = set(threading.enumerate())
    registry = Registry()
    fired: list[int] = []

    timers = [registry.track(threading.Timer(3600, fired.append, (i,))) for i in range(N_THREAD_TIMERS)]
    for timer in timers:
        timer.start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tasks = [registry.track(asyncio.ensure_future(asyncio.sleep(3600))) for _ in range(N_TASKS)]
        handles = [registry.track(loop.call_later(3600, fired.append, -1)) for _ in range(N_HANDLES)]
        await asyncio.sleep(0)
        assert len(registry) == N_THREAD_TIMERS + N_TASKS + N_HANDLES

        assert registry.cancel_all() == N_THREAD_TIMERS + N_TASKS + N_HANDLES
        assert await registry.wait(timeout=10)
        assert all(task.cancelled() for task in tasks)
        assert all(handle.cancelled() for handle in handles)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    for timer in timers:
        timer.join(10)
    assert set(threading.enumerate()) == threads_before
    assert len(registry) == 0
    assert fired == []


def test_track_returns_its_argument_and_forgets_finished_work() -> None:
    registry = Registry()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = registry.track(asyncio.ensure_future(asyncio.sleep(0.001, "done")))
        assert task in registry
        assert await task == "done"
        fired = asyncio.Event()
        registry.track(loop.call_later(0.001, fired.set))
        await fired.wait()
        await asyncio.sleep(0)
        assert len(registry) == 0

    asyncio.run(main())

    ran = threading.Event()
    timer = registry.track(threading.Timer(0.001, ran.set))
    timer.start()
    assert ran.wait(5)
    timer.join(5)
    assert _wait_until(lambda: len(registry) == 0)

    started_first = threading.Timer(0.001, ran.set)
    started_first.start()
    registry.track(started_first)
    started_first.join(5)
    assert len(registry) == 0

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = registry.track(pool.submit(time.sleep, 0.001))
        future.result(5)
    assert len(registry) == 0


def test_default_registry_keeps_fire_and_forget_tasks_alive() -> None:
    results: list[int] = []

    async def work(i: int) -> None:
        await asyncio.sleep(0.001)
        results.append(i)

    async def main() -> None:
        for i in range(100):
            track(asyncio.create_task(work(i)))
        # Without a strong reference these tasks could be garbage collected mid-flight.
        gc.collect()
        assert await default_registry.wait(timeout=5)

    asyncio.run(main())
    assert sorted(results) == list(range(100))
    assert len(default_registry) == 0


def test_failed_tracked_task_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture, fresh_metrics: None
) -> None:
    async def boom() -> None:
        raise RuntimeError("tracked failure")

    async def main() -> None:
        registry = Registry()
        registry.track(asyncio.ensure_future(boom()))
        await registry.wait()

    with caplog.at_level(logging.ERROR, logger="auditlint.runtime"):
        asyncio.run(main())
    assert "tracked failure" in caplog.text
    assert metrics.counter("registry.failures") == 1


def test_cancel_all_from_another_thread_reaches_a_running_loop() -> None:
    registry = Registry()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    outcome: list[bool] = []

    async def main() -> None:
        task = registry.track(asyncio.ensure_future(asyncio.sleep(3600)))
        started.set()
        try:
            await task
        except asyncio.CancelledError:
            outcome.append(True)

    runner = threading.Thread(target=loop.run_until_complete, args=(main(),))
    runner.start()
    assert started.wait(5)
    assert registry.cancel_all() == 1
    runner.join(5)
    loop.close()
    assert outcome == [True]
    assert len(registry) == 0


def test_tracking_many_short_lived_tasks_keeps_memory_flat() -> None:
    registry = Registry()

    async def batch() -> None:
        for _ in range(1_000):
            registry.track(asyncio.ensure_future(asyncio.sleep(0)))
        await registry.wait()

    async def main() -> tuple[int, int]:
        await batch()
        gc.collect()
        first = tracemalloc.take_snapshot()
        for _ in range(8):
            await batch()
        gc.collect()
        second = tracemalloc.take_snapshot()
        grown = sum(stat.size_diff for stat in second.compare_to(first, "filename"))
        return grown, len(registry)

    tracemalloc.start()
    try:
        grown, left = asyncio.run(main())
    finally:
        tracemalloc.stop()
    assert left == 0
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over 8,000 tracked tasks"


def test_track_rejects_what_it_cannot_cancel() -> None:
    with pytest.raises(TypeError, match="track"):
        Registry().track(object())
