"""Keeps background tasks, futures and timers alive and cancellable until they finish.

`track(handle)` puts a handle in the process-wide `default_registry` and returns it unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .metrics import metrics

__all__ = ["Registry", "default_registry", "track"]

T = TypeVar("T")

logger = logging.getLogger("auditlint.runtime")

# Handles that cannot report their own end (asyncio TimerHandles, threading.Timers that were
# already running when tracked) are pruned lazily; pruning runs when their number doubles, so
# tracking stays amortised O(1) however many are alive.
_MIN_PRUNE_AT = 64


class Registry:
    """A thread-safe set of live background handles.

    What it holds, and how each kind is forgotten:

    - asyncio tasks and futures, `concurrent.futures.Future`: forgotten by a done callback. A
      tracked task that fails is logged (logger `auditlint.runtime`) and counted, since nobody
      awaits a fire-and-forget task.
    - `threading.Timer` tracked before `start()` (as in `track(Timer(...)).start()`): its `run`
      is wrapped on the instance, so it is forgotten when its thread ends, fired or cancelled.
      One tracked after `start()` is forgotten lazily once it has finished.
    - asyncio `TimerHandle` (`loop.call_later`, `loop.call_at`): it has no completion hook, so
      it is forgotten lazily once it is cancelled or the loop has taken it off its schedule to
      run it. Lazy pruning happens on `len()`, `cancel_all()` and as the registry grows.

    `cancel_all()` cancels everything; cancelled tasks leave once their loop has run their
    cancellation, which `await registry.wait()` waits for.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notified: dict[int, Any] = {}
        self._polled: dict[int, tuple[Any, asyncio.AbstractEventLoop | None]] = {}
        self._prune_at = _MIN_PRUNE_AT

    def track(self, handle: T) -> T:
        """Keep `handle` until it is done; return it unchanged so the call can wrap an expression."""
        key = id(handle)
        if isinstance(handle, threading.Timer):
            self._track_timer(handle, key)
        elif callable(getattr(handle, "add_done_callback", None)):
            with self._lock:
                self._notified[key] = handle
            handle.add_done_callback(self._future_done)  # type: ignore[attr-defined]
        elif callable(getattr(handle, "cancel", None)) and callable(getattr(handle, "when", None)):
            self._add_polled(handle, key, _running_loop())
        else:
            raise TypeError(
                f"track() takes an asyncio task or future, a concurrent.futures.Future, a "
                f"threading.Timer or an asyncio TimerHandle, not {type(handle).__name__}"
            )
        metrics.inc("registry.tracked")
        return handle

    def cancel_all(self) -> int:
        """Cancel every tracked handle; return how many were cancelled.

        Safe from any thread: asyncio handles that belong to a loop running in another thread
        are cancelled through `call_soon_threadsafe`.
        """
        with self._lock:
            futures = list(self._notified.values())
            polled = list(self._polled.values())
        here = _running_loop()
        cancelled = 0
        for handle in futures:
            if isinstance(handle, threading.Timer):
                handle.cancel()
                if handle.ident is None:
                    # Never started, so its wrapped run() will never forget it.
                    with self._lock:
                        self._notified.pop(id(handle), None)
                cancelled += 1
            elif not handle.done():
                loop = _loop_of(handle)
                if loop is not None and loop is not here and loop.is_running():
                    loop.call_soon_threadsafe(handle.cancel)
                else:
                    handle.cancel()
                cancelled += 1
        for handle, loop in polled:
            if isinstance(handle, threading.Timer):
                handle.cancel()
            elif loop is not None and loop is not here and loop.is_running():
                loop.call_soon_threadsafe(handle.cancel)
            else:
                handle.cancel()
            cancelled += 1
        self._prune()
        metrics.inc("registry.cancelled", cancelled)
        return cancelled

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until every tracked asyncio task or future of the running loop is done.

        Tasks that track new tasks while finishing are waited for too. Their exceptions are not
        raised here. Returns False if `timeout` (seconds) ran out first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._lock:
                pending = [
                    h
                    for h in self._notified.values()
                    if isinstance(h, asyncio.Future) and not h.done() and h.get_loop() is loop
                ]
            if not pending:
                # Done callbacks are scheduled with call_soon; one pass lets them forget.
                await asyncio.sleep(0)
                return True
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(pending, timeout=remaining)

    def __len__(self) -> int:
        self._prune()
        with self._lock:
            return len(self._notified) + len(self._polled)

    def __contains__(self, handle: object) -> bool:
        self._prune()
        key = id(handle)
        with self._lock:
            return self._notified.get(key) is handle or (
                key in self._polled and self._polled[key][0] is handle
            )

    def _future_done(self, future: Any) -> None:
        with self._lock:
            self._notified.pop(id(future), None)
        if future.cancelled():
            return
        try:
            error = future.exception()
        except Exception:  # noqa: BLE001 - a future of a closed loop may refuse; nothing to report
            return
        if error is not None:
            metrics.inc("registry.failures")
            logger.error("tracked %r failed", future, exc_info=error)

    def _track_timer(self, timer: threading.Timer, key: int) -> None:
        if timer.finished.is_set() and not timer.is_alive():
            return
        if timer.ident is not None:
            self._add_polled(timer, key, None)
            return
        run: Callable[[], None] = timer.run

        def run_then_forget() -> None:
            try:
                run()
            finally:
                with self._lock:
                    self._notified.pop(key, None)

        timer.run = run_then_forget  # type: ignore[method-assign]
        with self._lock:
            self._notified[key] = timer

    def _add_polled(self, handle: Any, key: int, loop: asyncio.AbstractEventLoop | None) -> None:
        with self._lock:
            self._polled[key] = (handle, loop)
            grow = len(self._polled) >= self._prune_at
        if grow:
            self._prune()

    def _prune(self) -> None:
        with self._lock:
            if not self._polled:
                return
            items = list(self._polled.items())
        finished = [key for key, (handle, _) in items if _finished(handle)]
        with self._lock:
            for key in finished:
                self._polled.pop(key, None)
            self._prune_at = max(_MIN_PRUNE_AT, 2 * len(self._polled))


def _finished(handle: Any) -> bool:
    if isinstance(handle, threading.Timer):
        return handle.finished.is_set() and not handle.is_alive()
    if handle.cancelled():
        return True
    # CPython's loop clears `_scheduled` when it pops a due timer to run it; loops without the
    # attribute (uvloop) keep such handles until they are cancelled or cancel_all() runs.
    return getattr(handle, "_scheduled", True) is False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _loop_of(future: Any) -> asyncio.AbstractEventLoop | None:
    get_loop = getattr(future, "get_loop", None)
    return get_loop() if callable(get_loop) else None


default_registry = Registry()


def track(handle: T) -> T:
    """Keep `handle` alive in `default_registry` until it is done and return it unchanged.

    `track(asyncio.create_task(coro()))` evaluates to the task; `default_registry.cancel_all()`
    cancels whatever is still running, e.g. on shutdown.
    """
    return default_registry.track(handle)
