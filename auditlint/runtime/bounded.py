"""Run many awaitables with at most `limit` in flight: `gather_bounded` and `map_bounded`.

Both return results in input order, like `asyncio.gather`, and start work only as slots free.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar, Union, overload

from .metrics import metrics

__all__ = ["gather_bounded", "map_bounded"]

T = TypeVar("T")
R = TypeVar("R")

_END = object()


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, not {limit!r}")


def _discard(awaitable: object) -> None:
    """Close a coroutine that will never run, so Python does not warn it was never awaited."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()
    elif isinstance(awaitable, asyncio.Future):
        awaitable.cancel()


async def _run(
    pull: Callable[[], Any],
    pull_is_async: bool,
    make: Callable[[Any], Awaitable[Any]] | None,
    rest: Callable[[], None] | None,
    limit: int,
    return_exceptions: bool,
) -> list[Any]:
    """Pull items one by one as slots free, run each as a task, collect results in order.

    Completion is signalled by done callbacks into a queue, so each item costs O(1) however
    high the limit; `asyncio.wait` would re-register callbacks on every pending task per round.
    """
    loop = asyncio.get_running_loop()
    results: list[Any] = []
    in_flight: dict[asyncio.Future[Any], int] = {}
    duplicates: dict[asyncio.Future[Any], list[int]] = {}
    completed: deque[asyncio.Future[Any]] = deque()
    waiter: list[asyncio.Future[None]] = []
    exhausted = False
    peak = ok = failed = 0

    def on_done(future: asyncio.Future[Any]) -> None:
        completed.append(future)
        if waiter and not waiter[0].done():
            waiter[0].set_result(None)

    try:
        while True:
            while not exhausted and len(in_flight) < limit:
                item = pull()
                if pull_is_async:
                    item = await item
                if item is _END:
                    exhausted = True
                    break
                index = len(results)
                results.append(None)
                future: asyncio.Future[Any]
                try:
                    future = asyncio.ensure_future(make(item) if make is not None else item)
                except Exception as exc:
                    failed += 1
                    if not return_exceptions:
                        raise
                    results[index] = exc
                    continue
                if future in in_flight:
                    duplicates.setdefault(future, []).append(index)
                    continue
                in_flight[future] = index
                future.add_done_callback(on_done)
            peak = max(peak, len(in_flight))
            if not in_flight:
                return results
            if not completed:
                waiter.append(loop.create_future())
                try:
                    await waiter[0]
                finally:
                    waiter.clear()
            while completed:
                future = completed.popleft()
                index = in_flight.pop(future)
                error: BaseException | None
                if future.cancelled():
                    error = asyncio.CancelledError()
                else:
                    error = future.exception()
                if error is None:
                    ok += 1
                    value = future.result()
                else:
                    failed += 1
                    if not return_exceptions:
                        raise error
                    value = error
                results[index] = value
                for extra in duplicates.pop(future, ()):
                    results[extra] = value
    except BaseException:
        for future in in_flight:
            future.cancel()
        if rest is not None:
            rest()
        if in_flight:
            await asyncio.wait(list(in_flight))
            for future in in_flight:
                if not future.cancelled():
                    future.exception()  # retrieved, so asyncio does not log it as lost
        metrics.inc("bounded.aborted")
        raise
    finally:
        metrics.inc("bounded.calls")
        metrics.observe("bounded.fanout", len(results))
        metrics.max_gauge("bounded.inflight_peak", peak)
        metrics.inc("bounded.tasks_ok", ok)
        metrics.inc("bounded.tasks_failed", failed)


@overload
async def gather_bounded(
    *aws: Awaitable[T], limit: int, return_exceptions: Literal[False] = ...
) -> list[T]: ...


@overload
async def gather_bounded(
    *aws: Awaitable[T], limit: int, return_exceptions: bool
) -> list[Union[T, BaseException]]: ...


async def gather_bounded(*aws: Awaitable[Any], limit: int, return_exceptions: bool = False) -> list[Any]:
    """`asyncio.gather` that runs at most `limit` of `aws` at once.

    Coroutines are wrapped in tasks only as slots free. Futures and tasks passed in are already
    running and are only awaited in their turn. Results come in argument order; the same
    awaitable passed twice runs once. Without `return_exceptions` the first failure cancels
    the rest and propagates; unstarted coroutines are closed. If the caller is cancelled,
    everything it started is cancelled and awaited before the cancellation propagates.
    """
    _check_limit(limit)
    slot_of: dict[int, int] = {}
    unique: list[Awaitable[Any]] = []
    order: list[int] = []
    for aw in aws:
        slot = slot_of.setdefault(id(aw), len(unique))
        if slot == len(unique):
            unique.append(aw)
        order.append(slot)
    source = iter(unique)

    def pull() -> Any:
        return next(source, _END)

    def rest() -> None:
        for aw in source:
            _discard(aw)

    results = await _run(pull, False, None, rest, limit, return_exceptions)
    if len(unique) == len(order):
        return results
    return [results[slot] for slot in order]


@overload
async def map_bounded(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    limit: int,
    return_exceptions: Literal[False] = ...,
) -> list[R]: ...


@overload
async def map_bounded(
    fn: Callable[[T], Awaitable[R]],
    items: Iterable[T] | AsyncIterable[T],
    *,
    limit: int,
    return_exceptions: bool,
) -> list[Union[R, BaseException]]: ...


async def map_bounded(
    fn: Callable[[Any], Awaitable[Any]],
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    limit: int,
    return_exceptions: bool = False,
) -> list[Any]:
    """`[await fn(x) for x in items]` with at most `limit` calls in flight, results in order.

    `items` may be any iterable or async iterable and is consumed lazily: `fn(item)` is called
    only when a slot is free, so a million items never become a million coroutines at once.
    An exception raised by `fn(item)` itself counts as that item's failure. Failure and
    cancellation behave as in `gather_bounded`.
    """
    _check_limit(limit)
    if isinstance(items, AsyncIterable):
        iterator = items.__aiter__()

        async def apull() -> Any:
            try:
                return await iterator.__anext__()
            except StopAsyncIteration:
                return _END

        return await _run(apull, True, fn, None, limit, return_exceptions)
    source = iter(items)

    def pull() -> Any:
        return next(source, _END)

    return await _run(pull, False, fn, None, limit, return_exceptions)
