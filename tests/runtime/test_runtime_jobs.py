"""PeriodicJob, AsyncPeriodicJob, JobScheduler: no overlap, backoff, prompt stop, flat memory."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import tracemalloc

import pytest

from auditlint.runtime import AsyncPeriodicJob, JobScheduler, PeriodicJob, metrics


class Concurrency:
    """Counts calls in flight, to prove runs never overlap."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.calls = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_runs_never_overlap_even_when_slower_than_the_interval() -> None:
    seen = Concurrency()

    def slow() -> None:
        with seen:
            time.sleep(0.005)

    with PeriodicJob(0.001, slow, initial_delay=0) as job:
        deadline = time.monotonic() + 5
        while seen.calls < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
    stats = job.stats
    assert seen.calls >= 30
    assert seen.peak == 1
    assert stats.runs == seen.calls
    assert stats.skipped > 0  # overrunning ticks were skipped, not queued
    assert stats.max_duration >= 0.005
    assert not job.running


def test_errors_are_logged_and_back_off_exponentially_up_to_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    stamps: list[float] = []

    def failing() -> None:
        stamps.append(time.monotonic())
        raise ValueError("upstream down")

    with caplog.at_level(logging.ERROR, logger="auditlint.runtime.jobs"):
        job = PeriodicJob(0.01, failing, initial_delay=0, max_backoff=0.08, name="failing")
        with job:
            deadline = time.monotonic() + 5
            while len(stamps) < 6 and time.monotonic() < deadline:
                time.sleep(0.01)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    # Expected waits: 0.02, 0.04, 0.08, then the 0.08 cap; timers only ever wake late.
    assert gaps[0] >= 0.02 * 0.9
    assert gaps[1] >= 0.04 * 0.9
    assert gaps[2] >= 0.08 * 0.9
    assert all(gap < 0.08 + 0.5 for gap in gaps)
    stats = job.stats
    assert stats.failures == stats.runs >= 6
    assert stats.consecutive_failures == stats.failures
    assert stats.last_error is not None and "upstream down" in stats.last_error
    assert "job 'failing' failed" in caplog.text and "upstream down" in caplog.text
    planned = [record.args[2] for record in caplog.records if record.name == "auditlint.runtime.jobs"]  # type: ignore[index]
    assert planned[:5] == pytest.approx([0.02, 0.04, 0.08, 0.08, 0.08])


def test_a_success_resets_the_backoff() -> None:
    calls: list[float] = []

    def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise ValueError("not yet")

    with PeriodicJob(0.01, flaky, initial_delay=0, max_backoff=10) as job:
        deadline = time.monotonic() + 5
        while len(calls) < 7 and time.monotonic() < deadline:
            time.sleep(0.005)
    stats = job.stats
    assert stats.failures == 3
    assert stats.consecutive_failures == 0
    # After recovery the job is back at its 10 ms rate, not at the 80 ms of the last backoff.
    assert min(b - a for a, b in zip(calls[4:], calls[5:])) < 0.06


def test_stop_returns_promptly_instead_of_waiting_out_the_interval() -> None:
    ran = threading.Event()
    job = PeriodicJob(60, ran.set).start()
    assert job.running
    stopped = threading.Event()

    def stop() -> None:
        job.stop()
        stopped.set()

    stopper = threading.Thread(target=stop)
    stopper.start()
    assert stopped.wait(5), "stop() waited for the 60 s interval"
    stopper.join()
    assert not job.running
    assert not ran.is_set()  # the first run waits for its initial delay


def test_first_run_comes_after_the_initial_delay() -> None:
    ran = threading.Event()
    with PeriodicJob(60, ran.set, initial_delay=0):
        assert ran.wait(5)


def test_memory_stays_flat_over_thousands_of_runs() -> None:
    counter = [0]

    def tick() -> None:
        counter[0] += 1

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 20
        while counter[0] < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert counter[0] >= n

    tracemalloc.start()
    try:
        with PeriodicJob(0.0001, tick, initial_delay=0, name="tick"):
            wait_for(500)
            gc.collect()
            first = tracemalloc.take_snapshot()
            wait_for(4_000)
            gc.collect()
            second = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in second.compare_to(first, "filename"))
    assert grown < 32 * 1024, f"memory grew by {grown} bytes over {counter[0] - 500} runs"
    assert metrics.counter("jobs.runs", {"job": "tick"}) >= 4_000


def test_coroutine_functions_need_the_async_flavour() -> None:
    async def work() -> None:
        return None

    with pytest.raises(TypeError, match="AsyncPeriodicJob"):
        PeriodicJob(1, work)
    with pytest.raises(ValueError, match="interval"):
        PeriodicJob(0, print)


def test_async_job_never_overlaps_and_stops_promptly() -> None:
    seen = Concurrency()

    async def slow() -> None:
        with seen:
            await asyncio.sleep(0.005)

    async def main() -> None:
        async with AsyncPeriodicJob(0.001, slow, initial_delay=0) as job:
            while seen.calls < 20:
                await asyncio.sleep(0.01)
        assert not job.running
        assert seen.peak == 1
        assert job.stats.runs == seen.calls

        idle = AsyncPeriodicJob(60, slow).start()
        assert await asyncio.wait_for(idle.stop(), 5) is True
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())


def test_async_job_backs_off_and_can_be_stopped_from_another_thread() -> None:
    failures = [0]

    async def failing() -> None:
        failures[0] += 1
        raise ValueError("nope")

    async def main() -> None:
        job = AsyncPeriodicJob(0.005, failing, initial_delay=0, max_backoff=0.02).start()
        while failures[0] < 4:
            await asyncio.sleep(0.005)
        stopper = threading.Thread(target=job.request_stop)
        stopper.start()
        stopper.join()
        assert await asyncio.wait_for(job.stop(), 5)
        assert job.stats.consecutive_failures == job.stats.failures >= 4

    asyncio.run(main())


def test_scheduler_starts_and_stops_ten_thousand_jobs_leaving_nothing_behind() -> None:
    threads_before = set(threading.enumerate())
    runs = [0]

    def sync_work() -> None:
        runs[0] += 1

    async def async_work() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        scheduler = JobScheduler(initial_delay=60)
        for i in range(300):
            scheduler.schedule(f"thread-{i}", 60, sync_work)
        for i in range(10_000):
            scheduler.schedule(f"task-{i}", 60, async_work)
        scheduler.schedule("busy", 0.001, sync_work, initial_delay=0)
        async with scheduler:
            assert len(threading.enumerate()) >= len(threads_before) + 301
            assert len(asyncio.all_tasks()) == 10_001
            while runs[0] < 5:
                await asyncio.sleep(0.01)
            stats = scheduler.stats()
            assert stats["busy"].runs >= 5
            assert stats["thread-0"].runs == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert not any(job.running for job in (scheduler["busy"], scheduler["task-0"]))

    asyncio.run(main())
    assert set(threading.enumerate()) == threads_before


def test_scheduler_sync_use_and_rules() -> None:
    ran = threading.Event()
    scheduler = JobScheduler()
    scheduler.schedule("billing", 60, ran.set, initial_delay=0)
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.schedule("billing", 60, ran.set)
    with scheduler:
        assert ran.wait(5)
        late = threading.Event()
        scheduler.schedule("late", 60, late.set, initial_delay=0)
        assert late.wait(5), "a job scheduled after start() starts at once"
        assert scheduler.unschedule("late", timeout=5)
        assert "late" not in scheduler
    assert scheduler.stats()["billing"].runs == 1
    assert not scheduler["billing"].running

    async def work() -> None:
        return None

    needs_loop = JobScheduler()
    needs_loop.schedule("async", 60, work)
    with pytest.raises(RuntimeError):
        needs_loop.start()
