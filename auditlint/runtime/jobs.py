"""Periodic background jobs that start, stop promptly, never overlap and back off on errors.

`PeriodicJob` runs a function on its own thread; `AsyncPeriodicJob` runs a coroutine function
as a task of the running event loop; `JobScheduler` keeps named jobs of either flavour.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .metrics import metrics
from .registry import track

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AsyncPeriodicJob", "JobScheduler", "JobStats", "PeriodicJob"]

logger = logging.getLogger("auditlint.runtime.jobs")


@dataclass(frozen=True)
class JobStats:
    """A snapshot of one job's counters; durations are in seconds."""

    name: str
    runs: int
    failures: int
    consecutive_failures: int
    skipped: int
    last_duration: float | None
    max_duration: float
    total_duration: float
    last_error: str | None
    running: bool


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for coroutine functions, partials of them and objects with an async `__call__`."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    # The class's __call__, not callable(): only it tells an async __call__ apart.
    return inspect.iscoroutinefunction(type(fn).__call__)


class _JobBase(abc.ABC):
    """Timing, stats and backoff shared by both flavours; the flavours only differ in waiting."""

    def __init__(
        self,
        interval: float,
        fn: Callable[[], Any],
        *,
        name: str | None,
        initial_delay: float | None,
        max_backoff: float | None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        if initial_delay is not None and initial_delay < 0:
            raise ValueError(f"initial_delay must not be negative, not {initial_delay!r}")
        if max_backoff is not None and max_backoff < interval:
            raise ValueError("max_backoff must be at least the interval")
        self.interval = float(interval)
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", None) or repr(fn)
        self.initial_delay = self.interval if initial_delay is None else float(initial_delay)
        self.max_backoff = 16 * self.interval if max_backoff is None else float(max_backoff)
        self._labels = {"job": self.name}
        self._stats_lock = threading.Lock()
        self._runs = 0
        self._failures = 0
        self._consecutive = 0
        self._skipped = 0
        self._last_duration: float | None = None
        self._max_duration = 0.0
        self._total_duration = 0.0
        self._last_error: str | None = None
        self._due = 0.0

    @property
    def stats(self) -> JobStats:
        with self._stats_lock:
            return JobStats(
                name=self.name,
                runs=self._runs,
                failures=self._failures,
                consecutive_failures=self._consecutive,
                skipped=self._skipped,
                last_duration=self._last_duration,
                max_duration=self._max_duration,
                total_duration=self._total_duration,
                last_error=self._last_error,
                running=self.running,
            )

    @property
    @abc.abstractmethod
    def running(self) -> bool:
        """True while the job's thread or task is alive."""

    def _first_delay(self) -> float:
        self._due = time.monotonic() + self.initial_delay
        return self.initial_delay

    def _finish_run(self, started: float, error: Exception | None) -> float:
        """Record one run and return the delay until the next one.

        Runs keep a fixed rate; a run that overruns skips the ticks it missed instead of
        queueing them. After `n` failures in a row the next run waits `interval * 2**n`, at
        most `max_backoff`; a success returns to the normal rate.
        """
        end = time.monotonic()
        duration = end - started
        with self._stats_lock:
            self._runs += 1
            self._last_duration = duration
            self._total_duration += duration
            self._max_duration = max(self._max_duration, duration)
            if error is None:
                self._consecutive = 0
                self._due += self.interval
                missed = 0
                if self._due <= end:
                    missed = math.floor((end - self._due) / self.interval) + 1
                    self._due += missed * self.interval
                    self._skipped += missed
                delay = self._due - end
            else:
                self._failures += 1
                self._consecutive += 1
                self._last_error = repr(error)
                delay = min(self.interval * 2.0**self._consecutive, self.max_backoff)
                self._due = end + delay
            consecutive = self._consecutive
        metrics.inc("jobs.runs", labels=self._labels)
        metrics.observe("jobs.duration_seconds", duration, labels=self._labels)
        if error is not None:
            metrics.inc("jobs.failures", labels=self._labels)
            logger.error(
                "job %r failed (%d in a row); next run in %.3g s",
                self.name,
                consecutive,
                delay,
                exc_info=error,
            )
        elif missed:
            metrics.inc("jobs.skipped", missed, labels=self._labels)
        return delay


class PeriodicJob(_JobBase):
    """Runs `fn()` every `interval` seconds on a daemon thread of its own.

    The first run comes after `initial_delay` (default: one interval). Runs never overlap:
    one thread runs them one after another. Exceptions are logged on logger
    `auditlint.runtime.jobs` and back off exponentially up to `max_backoff` (default: 16
    intervals). `stop()` wakes the waiting thread through an Event, so it returns as soon as a
    run in progress ends, not after the interval. `with PeriodicJob(...) as job:` starts and
    stops it. For coroutine functions use `AsyncPeriodicJob`.
    """

    def __init__(
        self,
        interval: float,
        fn: Callable[[], Any],
        *,
        name: str | None = None,
        initial_delay: float | None = None,
        max_backoff: float | None = None,
    ) -> None:
        if is_async_callable(fn):
            raise TypeError(f"{fn!r} is a coroutine function: use AsyncPeriodicJob")
        super().__init__(interval, fn, name=name, initial_delay=initial_delay, max_backoff=max_backoff)
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> Self:
        if self.running:
            raise RuntimeError(f"job {self.name!r} is already running")
        self._stop_event = threading.Event()
        self._thread = threading.Thread(
            target=self._main, args=(self._stop_event,), name=f"job:{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop and wait up to `timeout` seconds for a run in progress; True once it has ended."""
        self._stop_event.set()
        return self._join(timeout)

    def _join(self, timeout: float | None) -> bool:
        thread = self._thread
        if thread is None:
            return True
        if thread is not threading.current_thread():
            thread.join(timeout)
        return not thread.is_alive()

    def _main(self, stop: threading.Event) -> None:
        delay = self._first_delay()
        while not stop.wait(delay):
            started = time.monotonic()
            try:
                self.fn()
            except Exception as exc:  # noqa: BLE001 - a job's failure is logged and backed off
                delay = self._finish_run(started, exc)
            else:
                delay = self._finish_run(started, None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class AsyncPeriodicJob(_JobBase):
    """Runs `await fn()` every `interval` seconds as a task of the running event loop.

    Same schedule, backoff and stats as `PeriodicJob`. `start()` must be called with a loop
    running; the task is kept in `default_registry`. `request_stop()` may be called from any
    thread and returns at once; `await stop()` also waits for a run in progress (cancelling it
    after `timeout` seconds). `async with AsyncPeriodicJob(...) as job:` starts and stops it.
    """

    def __init__(
        self,
        interval: float,
        fn: Callable[[], Awaitable[Any]],
        *,
        name: str | None = None,
        initial_delay: float | None = None,
        max_backoff: float | None = None,
    ) -> None:
        super().__init__(interval, fn, name=name, initial_delay=initial_delay, max_backoff=max_backoff)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._wakeup: asyncio.Future[None] | None = None

    @property
    def running(self) -> bool:
        task = self._task
        return task is not None and not task.done()

    def start(self) -> Self:
        if self.running:
            raise RuntimeError(f"job {self.name!r} is already running")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._task = track(self._loop.create_task(self._main(), name=f"job:{self.name}"))
        return self

    def request_stop(self) -> None:
        """Ask the job to stop after the run in progress, if any; returns immediately."""
        self._stopping = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:
            loop.call_soon_threadsafe(self._wake)

    async def stop(self, timeout: float | None = None) -> bool:
        """Stop; True if it ended on its own within `timeout`, False if it had to be cancelled."""
        self.request_stop()
        task = self._task
        if task is None or task.done():
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if done:
            return True
        task.cancel()
        await asyncio.wait({task})
        return False

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _sleep(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        wakeup: asyncio.Future[None] = loop.create_future()
        self._wakeup = wakeup
        timer = loop.call_later(delay, _resolve, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None

    async def _main(self) -> None:
        delay = self._first_delay()
        while not self._stopping:
            await self._sleep(delay)
            if self._stopping:
                return
            started = time.monotonic()
            try:
                result = self.fn()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - a job's failure is logged and backed off
                delay = self._finish_run(started, exc)
            else:
                delay = self._finish_run(started, None)

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


if TYPE_CHECKING:
    Job = PeriodicJob | AsyncPeriodicJob


class JobScheduler:
    """Named periodic jobs with one start and one stop: `scheduleJob(name, interval, fn)` done right.

    `schedule()` picks the flavour: coroutine functions become `AsyncPeriodicJob`s (started
    only with an event loop running), others `PeriodicJob` threads. Jobs scheduled after
    `start()` start at once. `stop()` signals every job first and then waits, so stopping many
    jobs takes as long as the slowest run in progress; from async code use
    `await stop_async()`, which also waits for the async jobs. Usable as `with` and
    `async with`.
    """

    def __init__(self, *, initial_delay: float | None = None, max_backoff: float | None = None) -> None:
        self.initial_delay = initial_delay
        self.max_backoff = max_backoff
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._started = False

    def schedule(
        self,
        name: str,
        interval: float,
        fn: Callable[[], Any],
        *,
        initial_delay: float | None = None,
        max_backoff: float | None = None,
    ) -> Job:
        delay = self.initial_delay if initial_delay is None else initial_delay
        backoff = self.max_backoff if max_backoff is None else max_backoff
        job: Job
        if is_async_callable(fn):
            job = AsyncPeriodicJob(interval, fn, name=name, initial_delay=delay, max_backoff=backoff)
        else:
            job = PeriodicJob(interval, fn, name=name, initial_delay=delay, max_backoff=backoff)
        with self._lock:
            if name in self._jobs:
                raise ValueError(f"a job named {name!r} is already scheduled")
            self._jobs[name] = job
            started = self._started
        if started:
            job.start()
        return job

    def unschedule(self, name: str, timeout: float | None = None) -> bool:
        """Remove job `name`, stopping it; True if it has ended (async jobs end at their next wait)."""
        with self._lock:
            job = self._jobs.pop(name)
        if isinstance(job, PeriodicJob):
            return job.stop(timeout)
        job.request_stop()
        return not job.running

    def start(self) -> Self:
        with self._lock:
            if self._started:
                raise RuntimeError("scheduler already started")
            jobs = list(self._jobs.values())
            if any(isinstance(j, AsyncPeriodicJob) for j in jobs):
                asyncio.get_running_loop()  # raises with a clear message when there is none
            self._started = True
        for job in jobs:
            job.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop every job; True if all have ended within `timeout` (per thread job)."""
        jobs = self._stopping()
        for job in jobs:
            if isinstance(job, PeriodicJob):
                job._stop_event.set()
            else:
                job.request_stop()
        ended = True
        for job in jobs:
            if isinstance(job, PeriodicJob):
                ended = job._join(timeout) and ended
            else:
                ended = not job.running and ended
        return ended

    async def stop_async(self, timeout: float | None = None) -> bool:
        """Stop every job and wait for all of them without blocking the event loop."""
        jobs = self._stopping()
        threads = [j for j in jobs if isinstance(j, PeriodicJob)]
        tasks = [j for j in jobs if isinstance(j, AsyncPeriodicJob)]
        for job in tasks:
            job.request_stop()
        thread_wait = asyncio.to_thread(self._stop_threads, threads, timeout)
        # One stop per job this scheduler owns: bounded by the jobs it started, and each stop only waits.
        results = await asyncio.gather(thread_wait, *(j.stop(timeout) for j in tasks))  # noqa: AL202
        return all(results)

    @staticmethod
    def _stop_threads(jobs: list[PeriodicJob], timeout: float | None) -> bool:
        for job in jobs:
            job._stop_event.set()
        results = [job._join(timeout) for job in jobs]  # join every thread, no short cut
        return all(results)

    def _stopping(self) -> list[Job]:
        with self._lock:
            self._started = False
            return list(self._jobs.values())

    def stats(self) -> dict[str, JobStats]:
        with self._lock:
            jobs = list(self._jobs.items())
        return {name: job.stats for name, job in jobs}

    def __getitem__(self, name: str) -> Job:
        with self._lock:
            return self._jobs[name]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._jobs

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()
