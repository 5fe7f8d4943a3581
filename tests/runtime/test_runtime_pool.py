"""pooled(): 10,000 checkouts against PostgreSQL with errors and cancellations leak nothing."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from typing import Any

import pytest

from auditlint.runtime import metrics, pooled

CHECKOUTS = 10_000


class Injected(Exception):
    """The error injected into checkouts."""


def test_asyncpg_pool_survives_errors_and_cancellations(pg_dsn: str, fresh_metrics: None) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def checkout(pool: Any, i: int) -> None:
        async with pooled(pool) as conn:
            if i % 50 == 0:
                assert await conn.fetchval("SELECT 1") == 1
            if i % 7 == 0:
                raise Injected(i)
            if i % 11 == 0:
                await asyncio.sleep(10)  # cancelled from outside while holding the connection

    async def worker(pool: Any, indices: range) -> tuple[int, int]:
        errors = cancelled = 0
        for i in indices:
            task = asyncio.ensure_future(checkout(pool, i))
            if i % 11 == 0:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                task.cancel()
            try:
                await task
            except Injected:
                errors += 1
            except asyncio.CancelledError:
                cancelled += 1
        return errors, cancelled

    async def main() -> None:
        pool = await asyncpg.create_pool(pg_dsn, min_size=2, max_size=8)
        try:
            step = CHECKOUTS // 40
            counts = await asyncio.gather(
                *(worker(pool, range(s, s + step)) for s in range(0, CHECKOUTS, step))
            )
            assert sum(e for e, _ in counts) > 1_000
            assert sum(c for _, c in counts) > 500
            assert pool.get_idle_size() == pool.get_size()
        finally:
            await pool.close()

    asyncio.run(main())
    labels = {"pool": "asyncpg"}
    assert metrics.counter("pool.checkouts", labels) >= CHECKOUTS - 1_000  # some cancelled while waiting
    assert metrics.counter("pool.leaks", labels) == 0
    assert metrics.gauge("pool.in_use", labels) == 0
    assert 1 <= metrics.gauge("pool.in_use_peak", labels) <= 8
    assert metrics.summary("pool.acquire_wait_seconds", labels).count == metrics.counter(
        "pool.checkouts", labels
    )


def test_asyncpg_antipattern_leaks_connections(pg_dsn: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def antipattern(pool: Any, leaked: list[Any]) -> None:
        conn = await pool.acquire()
        leaked.append(conn)
        await conn.fetchval("SELECT 1")
        raise Injected("raised before release")

    async def main() -> None:
        pool = await asyncpg.create_pool(pg_dsn, min_size=4, max_size=4)
        leaked: list[Any] = []
        try:
            for _ in range(3):
                with pytest.raises(Injected):
                    await antipattern(pool, leaked)
            assert pool.get_idle_size() == pool.get_size() - 3
        finally:
            for conn in leaked:
                await pool.release(conn)
        assert pool.get_idle_size() == pool.get_size()
        await pool.close()

    asyncio.run(main())


def test_sync_with_on_an_async_pool_is_refused(pg_dsn: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def main() -> None:
        pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
        try:
            with pytest.raises(TypeError, match="async with"):
                with pooled(pool):
                    pass
            assert pool.get_idle_size() == pool.get_size()
        finally:
            await pool.close()

    asyncio.run(main())


def test_psycopg_pool_survives_errors_from_many_threads(pg_dsn: str, fresh_metrics: None) -> None:
    psycopg_pool = pytest.importorskip("psycopg_pool")
    pool = psycopg_pool.ConnectionPool(pg_dsn, min_size=2, max_size=4, open=True, timeout=10)
    errors = [0]
    lock = threading.Lock()

    def worker(indices: range) -> None:
        for i in indices:
            try:
                with pooled(pool) as conn:
                    if i % 100 == 0:
                        assert conn.execute("SELECT 1").fetchone() == (1,)
                    if i % 7 == 0:
                        raise Injected(i)
            except Injected:
                with lock:
                    errors[0] += 1

    try:
        pool.wait(timeout=10)
        step = CHECKOUTS // 4
        threads = [
            threading.Thread(target=worker, args=(range(s, s + step),)) for s in range(0, CHECKOUTS, step)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        stats = pool.get_stats()
        assert stats["pool_available"] == stats["pool_size"]
        assert errors[0] == len([i for i in range(CHECKOUTS) if i % 7 == 0])
    finally:
        pool.close()
    labels = {"pool": "psycopg_pool"}
    assert metrics.counter("pool.checkouts", labels) == CHECKOUTS
    assert metrics.counter("pool.errors", labels) == errors[0]
    assert metrics.counter("pool.leaks", labels) == 0
    assert metrics.gauge("pool.in_use", labels) == 0


def test_psycopg_antipattern_leaks_and_a_dropped_pooled_counts_as_leak(
    pg_dsn: str, fresh_metrics: None
) -> None:
    psycopg_pool = pytest.importorskip("psycopg_pool")
    with psycopg_pool.ConnectionPool(pg_dsn, min_size=2, max_size=2, open=True) as pool:
        pool.wait(timeout=10)
        leaked = []
        try:
            conn = pool.getconn()
            leaked.append(conn)
            raise Injected("raised before putconn")
        except Injected:
            pass
        assert pool.get_stats()["pool_available"] == 1
        pool.putconn(leaked.pop())

        holder = pooled(pool)
        conn = holder.__enter__()
        del holder
        gc.collect()
        assert metrics.counter("pool.leaks", {"pool": "psycopg_pool"}) == 1
        pool.putconn(conn)
        assert pool.get_stats()["pool_available"] == 2


def test_psycopg_async_pool(pg_dsn: str) -> None:
    psycopg_pool = pytest.importorskip("psycopg_pool")

    async def main() -> None:
        async with psycopg_pool.AsyncConnectionPool(pg_dsn, min_size=1, max_size=3, open=False) as pool:
            for i in range(300):
                try:
                    async with pooled(pool) as conn:
                        if i % 30 == 0:
                            cur = await conn.execute("SELECT 1")
                            assert await cur.fetchone() == (1,)
                        if i % 4 == 0:
                            raise Injected(i)
                except Injected:
                    pass
            stats = pool.get_stats()
            assert stats["pool_available"] == stats["pool_size"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # psycopg_pool's own open() advice
        asyncio.run(main())


def test_psycopg2_pool_gives_every_connection_back(pg_dsn: str) -> None:
    pytest.importorskip("psycopg2")
    from psycopg2.pool import ThreadedConnectionPool

    pool = ThreadedConnectionPool(1, 3, pg_dsn)
    try:
        for i in range(500):
            try:
                with pooled(pool) as conn:
                    if i % 50 == 0:
                        with conn.cursor() as cur:
                            cur.execute("SELECT 1")
                    if i % 3 == 0:
                        raise Injected(i)
            except Injected:
                pass
        # A leak would exhaust the pool here: psycopg2 raises PoolError at maxconn.
        taken = [pool.getconn() for _ in range(3)]
        for conn in taken:
            pool.putconn(conn)
    finally:
        pool.closeall()


def test_sqlalchemy_engine_connections_are_closed(pg_dsn: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    url = pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sqlalchemy.create_engine(url, pool_size=3, max_overflow=0, pool_timeout=5)
    try:
        for i in range(300):
            try:
                with pooled(engine) as conn:
                    if i % 30 == 0:
                        assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
                    if i % 3 == 0:
                        raise Injected(i)
            except Injected:
                pass
        assert engine.pool.checkedout() == 0
    finally:
        engine.dispose()


def test_pooled_rejects_what_is_not_a_pool() -> None:
    with pytest.raises(TypeError, match="getconn"):
        pooled(object())
