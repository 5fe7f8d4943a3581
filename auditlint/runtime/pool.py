"""`pooled(pool)`: borrow a connection from any common pool and always give it back.

One object serves `with` (sync pools) and `async with` (async pools); pools are recognised by
their methods, never by importing their libraries.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from .metrics import metrics

__all__ = ["Pooled", "pooled"]

logger = logging.getLogger("auditlint.runtime")


def _leaked(labels: dict[str, str]) -> None:
    metrics.inc("pool.leaks", labels=labels)
    metrics.track_in_use("pool.in_use", -1, labels)
    logger.warning("a connection from a %s pool was never given back", labels["pool"])


class Pooled:
    """The context manager `pooled()` returns; single use.

    How it borrows and returns, by what the pool offers:

    - `getconn()` / `putconn(conn)`: psycopg_pool `ConnectionPool` and `AsyncConnectionPool`,
      psycopg2.pool;
    - `acquire()` / `release(conn)`: asyncpg, aiopg, aiomysql;
    - `connect()` then `conn.close()`: SQLAlchemy `Engine`, `AsyncEngine` and pools.

    It never commits: it hands the connection back as it is, and each pool rolls back or
    resets what it gets. An async release is shielded, so a task cancelled while giving a
    connection back still gives it back.
    """

    __slots__ = ("__weakref__", "_conn", "_entered", "_finalizer", "_labels", "_pool", "_style")

    def __init__(self, pool: Any) -> None:
        if callable(getattr(pool, "getconn", None)) and callable(getattr(pool, "putconn", None)):
            style = "getconn"
        elif callable(getattr(pool, "acquire", None)) and callable(getattr(pool, "release", None)):
            style = "acquire"
        elif callable(getattr(pool, "connect", None)):
            style = "connect"
        else:
            raise TypeError(
                f"pooled() needs a pool with getconn/putconn, acquire/release or connect, "
                f"not {type(pool).__name__}"
            )
        self._pool = pool
        self._style = style
        self._entered = False
        self._conn: Any = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._labels = {"pool": type(pool).__module__.split(".")[0]}

    def _borrow(self) -> Any:
        if self._entered:
            raise RuntimeError("a pooled() context manager can be entered only once")
        self._entered = True
        pool = self._pool
        if self._style == "getconn":
            return pool.getconn()
        if self._style == "acquire":
            return pool.acquire()
        return pool.connect()

    def _got(self, conn: Any, started: float) -> Any:
        self._conn = conn
        metrics.observe("pool.acquire_wait_seconds", time.perf_counter() - started, self._labels)
        metrics.inc("pool.checkouts", labels=self._labels)
        metrics.track_in_use("pool.in_use", 1, self._labels)
        self._finalizer = weakref.finalize(self, _leaked, self._labels)
        return conn

    def _give_back(self) -> Callable[[], Any]:
        """Stop counting the connection as in use (before it is back, so the peak never counts it
        twice) and return the call that hands it back."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        metrics.track_in_use("pool.in_use", -1, self._labels)
        conn, self._conn = self._conn, None
        if self._style == "connect":
            return conn.close  # type: ignore[no-any-return]
        release = self._pool.putconn if self._style == "getconn" else self._pool.release
        return lambda: release(conn)

    def _release_failed(self) -> None:
        metrics.inc("pool.release_failures", labels=self._labels)
        metrics.inc("pool.leaks", labels=self._labels)

    def __enter__(self) -> Any:
        started = time.perf_counter()
        conn = self._borrow()
        if inspect.isawaitable(conn):
            if isinstance(conn, Coroutine):
                conn.close()
            self._entered = False
            raise TypeError(f"{type(self._pool).__name__} is an async pool: use `async with pooled(pool)`")
        return self._got(conn, started)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            metrics.inc("pool.errors", labels=self._labels)
        release = self._give_back()
        try:
            release()
        except BaseException:
            self._release_failed()
            raise

    async def __aenter__(self) -> Any:
        started = time.perf_counter()
        conn = self._borrow()
        if inspect.isawaitable(conn):
            conn = await conn
        return self._got(conn, started)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            metrics.inc("pool.errors", labels=self._labels)
        release = self._give_back()
        try:
            result = release()
        except BaseException:
            self._release_failed()
            raise
        if inspect.isawaitable(result):
            pending = asyncio.ensure_future(result)
            pending.add_done_callback(self._release_done)
            await asyncio.shield(pending)

    def _release_done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._release_failed()


def pooled(pool: Any) -> Pooled:
    """Borrow a connection: `with pooled(pool) as conn:` or `async with pooled(pool) as conn:`.

    The connection goes back on every path: normal exit, exceptions, and asyncio cancellation.
    Records `pool.checkouts`, `pool.in_use`, `pool.in_use_peak`, `pool.acquire_wait_seconds`,
    `pool.errors`, `pool.release_failures` and `pool.leaks`, labelled with the pool's library.
    A `pooled()` that is dropped while holding a connection counts as a leak.
    """
    return Pooled(pool)
