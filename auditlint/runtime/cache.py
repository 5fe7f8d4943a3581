"""Bulk cache invalidation: collect the keys a bulk write touches, delete them in one go.

`BulkInvalidation` deletes on leaving its block, also when the block raises, so a write that
fails half way leaves no stale entries for the rows it did change.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Hashable, Iterable, MutableMapping
from types import TracebackType
from typing import Any

from .metrics import metrics

__all__ = ["BulkInvalidation", "ainvalidate_many", "invalidate_many"]

# Keys per UNLINK/DEL command; larger batches are pipelined, still one round trip.
CHUNK = 1000


def _backend(cache: Any) -> str:
    if callable(getattr(cache, "unlink", None)) or (
        callable(getattr(cache, "delete", None)) and callable(getattr(cache, "pipeline", None))
    ):
        return "redis"
    if callable(getattr(cache, "delete_many", None)):
        return "delete_many"
    if isinstance(cache, MutableMapping) or all(
        callable(getattr(cache, name, None)) for name in ("pop", "__delitem__", "keys")
    ):
        return "mapping"
    if callable(getattr(cache, "cache_clear", None)):
        return "cache_clear"
    if callable(getattr(cache, "delete", None)):
        return "delete"
    raise TypeError(
        f"cannot invalidate keys of {type(cache).__name__}: expected a Redis client, a "
        f"delete_many() cache, a mapping, a functools cache or an object with delete(key)"
    )


def _plan(cache: Any, keys: list[Any], unlink: bool) -> tuple[str, list[Callable[[], Any]]]:
    """The calls that delete `keys`, each returning a value or an awaitable (async clients)."""
    backend = _backend(cache)
    if not keys:
        return backend, []
    if backend == "redis":
        command = "unlink" if unlink and callable(getattr(cache, "unlink", None)) else "delete"
        if len(keys) <= CHUNK or not callable(getattr(cache, "pipeline", None)):
            method = getattr(cache, command)
            return backend, [
                functools.partial(method, *keys[i : i + CHUNK]) for i in range(0, len(keys), CHUNK)
            ]

        def pipelined() -> Any:
            pipe = cache.pipeline(transaction=False)
            for i in range(0, len(keys), CHUNK):
                getattr(pipe, command)(*keys[i : i + CHUNK])
            return pipe.execute()

        return backend, [pipelined]
    if backend == "delete_many":
        return backend, [lambda: cache.delete_many(keys)]
    if backend == "mapping":

        def pop_all() -> None:
            for key in keys:
                cache.pop(key, None)

        return backend, [pop_all]
    if backend == "cache_clear":
        return backend, [cache.cache_clear]
    return backend, [functools.partial(cache.delete, key) for key in keys]


def _unique(keys: Iterable[Hashable]) -> list[Any]:
    return list(dict.fromkeys(keys))


def _record(backend: str, count: int, ok: bool) -> None:
    labels = {"backend": backend}
    if ok:
        metrics.inc("cache.invalidated_keys", count, labels)
        metrics.inc("cache.invalidation_batches", labels=labels)
    else:
        metrics.inc("cache.invalidation_failures", labels=labels)


def invalidate_many(cache: Any, keys: Iterable[Hashable], *, unlink: bool = True) -> int:
    """Delete `keys` from `cache` in as few round trips as the backend allows.

    Backends, recognised by their methods: Redis clients (`UNLINK k1 k2 ...`, which frees
    memory off the server's main thread; `unlink=False` sends `DEL`, e.g. for Redis < 4,
    pipelined in chunks of 1,000 keys), Django-style `delete_many(keys)`, mappings such as
    dicts and cachetools caches (`pop(key, None)`), functools caches (`cache_clear()`: their
    keys are call arguments, so the whole cache goes) and objects with `delete(key)`.
    Returns the number of distinct keys. For async clients use `ainvalidate_many`.
    """
    unique = _unique(keys)
    backend, calls = _plan(cache, unique, unlink)
    ok = False
    try:
        for call in calls:
            result = call()
            if inspect.isawaitable(result):
                if isinstance(result, Coroutine):
                    result.close()
                raise TypeError(
                    f"{type(cache).__name__} is an async client: use ainvalidate_many() "
                    f"or `async with BulkInvalidation(cache)`"
                )
        ok = True
    finally:
        if calls:
            _record(backend, len(unique), ok)
    return len(unique)


async def ainvalidate_many(cache: Any, keys: Iterable[Hashable], *, unlink: bool = True) -> int:
    """`invalidate_many` for async clients (`redis.asyncio`); sync caches work here too."""
    unique = _unique(keys)
    backend, calls = _plan(cache, unique, unlink)
    ok = False
    try:
        for call in calls:
            result = call()
            if inspect.isawaitable(result):
                await result
        ok = True
    finally:
        if calls:
            _record(backend, len(unique), ok)
    return len(unique)


class BulkInvalidation:
    """Collect keys during a bulk write and delete them together when the block ends.

    `with BulkInvalidation(cache) as inv: ... inv.add(key)` for sync caches,
    `async with` for async ones. The keys added so far are deleted also when the block
    raises; the block's exception then propagates. Duplicates are sent once.
    """

    def __init__(self, cache: Any, *, unlink: bool = True) -> None:
        _backend(cache)
        self.cache = cache
        self.unlink = unlink
        self._keys: dict[Any, None] = {}

    def add(self, key: Hashable) -> None:
        self._keys[key] = None

    def update(self, keys: Iterable[Hashable]) -> None:
        self._keys.update(dict.fromkeys(keys))

    @property
    def keys(self) -> list[Any]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def _take(self) -> list[Any]:
        keys = list(self._keys)
        self._keys.clear()
        return keys

    def flush(self) -> int:
        """Delete the keys collected so far now (sync caches); returns how many."""
        return invalidate_many(self.cache, self._take(), unlink=self.unlink)

    async def aflush(self) -> int:
        """Delete the keys collected so far now (async caches); returns how many."""
        return await ainvalidate_many(self.cache, self._take(), unlink=self.unlink)

    def __enter__(self) -> BulkInvalidation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()

    async def __aenter__(self) -> BulkInvalidation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aflush()
