"""AL301: the fix proven against a real PostgreSQL pool (asyncpg and psycopg_pool) with an error
injected between the acquire and the use: before the fix the pool leaks the connection, after it
none; plus the pool table's answers."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Callable

import pytest

from auditlint.analysis.pools import classify_acquire, db_handle
from tests.conftest import pg_dsn
from tests.helpers import assert_fix_proven, fix, lint

START_PG = (
    "PostgreSQL is not reachable at {dsn}: start one on loopback with trust auth, e.g. "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15`, "
    "or point AUDITLINT_TEST_PG_DSN at a server"
)


@pytest.fixture(scope="module")
def dsn() -> str:
    psycopg = pytest.importorskip("psycopg")
    value = pg_dsn()
    try:
        psycopg.connect(value, connect_timeout=3).close()
    except Exception:  # noqa: BLE001 - any failure to connect means: skip with instructions
        pytest.skip(START_PG.format(dsn=value))
    return value


class Injected(Exception):
    """The error injected between the acquire and the use."""


def _fail() -> None:
    raise Injected()


def _load(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "example.py", "exec"), namespace)
    return namespace


def _fixed(source: str, style: str) -> str:
    fixed = fix(source, "AL301", fix_style=style)
    assert fixed != source
    assert_fix_proven(source, fixed, "AL301", fix_style=style)
    assert lint(fixed, "AL301", fix_style=style) == []
    return fixed


ASYNCPG_SOURCE = (
    inspect.cleandoc(
        """
    import asyncpg

    async def load(pool: asyncpg.Pool, check):
        conn = await pool.acquire()
        check()
        value = await conn.fetchval("SELECT 41 + 1")
        await pool.release(conn)
        return value
    """
    )
    + "\n"
)

ASYNCPG_LATE_TRY = (
    inspect.cleandoc(
        """
    import asyncpg

    async def load(pool: asyncpg.Pool, check):
        conn = await pool.acquire()
        check()
        try:
            return await conn.fetchval("SELECT 41 + 1")
        finally:
            await pool.release(conn)
    """
    )
    + "\n"
)


async def _asyncpg_leaks(dsn: str, source: str) -> bool:
    import asyncpg

    load = _load(source)["load"]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        assert await load(pool, lambda: None) == 42
        with pytest.raises(Injected):
            await load(pool, _fail)
        try:
            conn = await pool.acquire(timeout=1)
        except asyncio.TimeoutError:
            return True
        await pool.release(conn)
        return False
    finally:
        pool.terminate()


@pytest.mark.parametrize("source", [ASYNCPG_SOURCE, ASYNCPG_LATE_TRY], ids=["no-try", "late-try"])
@pytest.mark.parametrize("style", ["stdlib", "runtime"])
def test_asyncpg_fix_stops_the_leak(dsn: str, source: str, style: str) -> None:
    assert len(lint(source, "AL301")) == 1
    assert asyncio.run(_asyncpg_leaks(dsn, source)), "the original code should leak the connection"
    fixed = _fixed(source, style)
    assert "async with pool.acquire() as conn:" in fixed
    assert not asyncio.run(_asyncpg_leaks(dsn, fixed)), "the fixed code still leaks"


PSYCOPG_POOL_SOURCE = (
    inspect.cleandoc(
        """
    from psycopg_pool import ConnectionPool

    def load(pool: ConnectionPool, check):
        conn = pool.getconn()
        check()
        value = conn.execute("SELECT 41 + 1").fetchone()[0]
        pool.putconn(conn)
        return value
    """
    )
    + "\n"
)


def _psycopg_pool_leaks(dsn: str, source: str) -> bool:
    from psycopg_pool import ConnectionPool, PoolTimeout

    load: Callable[..., int] = _load(source)["load"]
    with ConnectionPool(dsn, min_size=1, max_size=1, open=True) as pool:
        assert load(pool, lambda: None) == 42
        with pytest.raises(Injected):
            load(pool, _fail)
        try:
            conn = pool.getconn(timeout=1)
        except PoolTimeout:
            return True
        pool.putconn(conn)
        return False


@pytest.mark.parametrize(
    ("style", "expected"), [("stdlib", "finally:"), ("runtime", "with pooled(pool) as conn:")]
)
def test_psycopg_pool_fix_stops_the_leak(dsn: str, style: str, expected: str) -> None:
    assert _psycopg_pool_leaks(dsn, PSYCOPG_POOL_SOURCE), "the original code should leak the connection"
    fixed = _fixed(PSYCOPG_POOL_SOURCE, style)
    assert expected in fixed
    assert not _psycopg_pool_leaks(dsn, fixed), "the fixed code still leaks"


def test_no_fix_when_not_straight_line() -> None:
    source = inspect.cleandoc(
        """
        from psycopg_pool import ConnectionPool

        def load(pool: ConnectionPool, skip):
            conn = pool.getconn()
            for _ in range(3):
                if skip:
                    break
                conn.execute("SELECT 1")
            if skip:
                return None
            pool.putconn(conn)
        """
    )
    findings = lint(source + "\n", "AL301")
    assert len(findings) == 1 and findings[0].fix is None
    assert findings[0].message.endswith("is not released on every path")


@pytest.mark.parametrize(
    ("pool", "method", "callee", "library"),
    [
        ("asyncpg.create_pool()", "acquire", None, "asyncpg"),
        ("asyncpg.Pool()", "acquire", None, "asyncpg"),
        ("psycopg_pool.ConnectionPool()", "getconn", None, "psycopg_pool"),
        ("psycopg_pool.AsyncConnectionPool()", "getconn", None, "psycopg_pool"),
        ("psycopg2.pool.ThreadedConnectionPool()", "getconn", None, "psycopg2.pool"),
        ("sqlalchemy.create_engine()", "connect", None, "sqlalchemy"),
        ("sqlalchemy.create_engine()", "raw_connection", None, "sqlalchemy"),
        ("sqlalchemy.ext.asyncio.create_async_engine()", "connect", None, "sqlalchemy.ext.asyncio"),
        (None, None, "sqlalchemy.orm.sessionmaker()", "sqlalchemy.orm"),
        (None, None, "sqlalchemy.orm.Session", "sqlalchemy.orm"),
        ("redis.Redis().connection_pool", "get_connection", None, "redis"),
        ("aiopg.create_pool()", "acquire", None, "aiopg"),
        ("aiomysql.create_pool()", "acquire", None, "aiomysql"),
    ],
)
def test_pool_table(pool: str | None, method: str | None, callee: str | None, library: str) -> None:
    found = classify_acquire(pool, method, callee)
    assert found is not None and found.kind.library == library


@pytest.mark.parametrize(
    ("pool", "method", "callee"),
    [
        ("asyncpg.create_pool()", "fetch", None),
        ("mylib.Pool()", "acquire", None),
        (None, None, "sqlalchemy.orm.sessionmaker"),
        ("threading.Lock()", "acquire", None),
    ],
)
def test_pool_table_rejects(pool: str | None, method: str | None, callee: str | None) -> None:
    assert classify_acquire(pool, method, callee) is None


@pytest.mark.parametrize(
    ("resolved", "driver", "role"),
    [
        ("sqlite3.connect()", "sqlite3", "connection"),
        ("sqlite3.connect().cursor()", "sqlite3", "cursor"),
        ("sqlite3.Cursor()", "sqlite3", "cursor"),
        ("psycopg_pool.ConnectionPool().connection()", "psycopg", "connection"),
        ("psycopg_pool.ConnectionPool().connection().cursor()", "psycopg", "cursor"),
        ("psycopg2.pool.SimpleConnectionPool().getconn().cursor()", "psycopg2", "cursor"),
        ("asyncpg.create_pool().acquire()", "asyncpg", "connection"),
        ("sqlalchemy.orm.sessionmaker()()", "sqlalchemy", "connection"),
    ],
)
def test_db_handle(resolved: str, driver: str, role: str) -> None:
    handle = db_handle(resolved)
    assert handle is not None and (handle.driver.name, handle.role) == (driver, role)
