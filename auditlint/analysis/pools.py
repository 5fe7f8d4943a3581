"""What database libraries hand out: pools, the connections taken from them, and cursors.

One table, `POOLS`, says for each pool library how a connection is taken, how it goes back and
which context manager does both; one table, `DRIVERS`, says which objects are connections and
cursors of a DB-API driver and how that driver batches a statement. Rules ask questions in
terms of *resolved* expressions (`FileContext.resolve_expr` / `resolve_call_target` forms such as
`asyncpg.create_pool()` or `sqlite3.connect().cursor()`), never of local spellings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import libcst as cst

from auditlint.analysis.loops import words

if TYPE_CHECKING:
    from auditlint.context import FileContext


@dataclass(frozen=True)
class PoolKind:
    """How one library lends connections."""

    library: str
    #: Classes whose instances are pools (called to build one, or used as an annotation).
    pool_types: tuple[str, ...]
    #: Functions that return a pool.
    factories: tuple[str, ...]
    #: Methods of the pool that hand out a connection; `""` means calling the pool itself
    #: (`SessionLocal()` for a `sessionmaker`).
    acquire: tuple[str, ...]
    #: Callables that hand out a connection with no pool object (`Session(engine)`).
    direct: tuple[str, ...]
    #: `"pool"`: `pool.<release>(conn)`; `"conn"`: `conn.<release>()`.
    release_on: str
    release: str
    #: True: the acquire is awaited (`await pool.acquire()`), False: never, None: either.
    awaited: Optional[bool]
    #: True when the release is awaited, or the context manager is `async with`.
    async_release: bool
    #: The acquire expression itself is a context manager whose exit is exactly the release
    #: (`async with pool.acquire() as conn`, `with engine.connect() as conn`).
    acquire_is_context: bool
    #: The context-manager method of the pool, for the docs and messages (`pool.connection()`);
    #: it may do more than the release (psycopg_pool's commits), so fixes do not use it.
    context_method: Optional[str]
    #: `auditlint.runtime.pooled(pool)` understands this pool.
    runtime_pooled: bool
    #: The DB-API driver of the connections, a key of `DRIVERS`, if any.
    driver: Optional[str] = None

    def pool_forms(self) -> frozenset[str]:
        """Resolved forms of an expression that is a pool of this kind."""
        return frozenset(f"{name}()" for name in (*self.pool_types, *self.factories))


POOLS: tuple[PoolKind, ...] = (
    PoolKind(
        library="asyncpg",
        pool_types=("asyncpg.Pool", "asyncpg.pool.Pool"),
        factories=("asyncpg.create_pool", "asyncpg.pool.create_pool"),
        acquire=("acquire",),
        direct=(),
        release_on="pool",
        release="release",
        awaited=True,
        async_release=True,
        acquire_is_context=True,
        context_method="acquire",
        runtime_pooled=True,
        driver="asyncpg",
    ),
    PoolKind(
        library="aiopg",
        pool_types=("aiopg.Pool", "aiopg.pool.Pool"),
        factories=("aiopg.create_pool", "aiopg.pool.create_pool"),
        acquire=("acquire",),
        direct=(),
        release_on="pool",
        release="release",
        awaited=True,
        async_release=True,
        acquire_is_context=True,
        context_method="acquire",
        runtime_pooled=True,
    ),
    PoolKind(
        library="aiomysql",
        pool_types=("aiomysql.Pool", "aiomysql.pool.Pool"),
        factories=("aiomysql.create_pool", "aiomysql.pool.create_pool"),
        acquire=("acquire",),
        direct=(),
        release_on="pool",
        release="release",
        awaited=True,
        async_release=True,
        acquire_is_context=True,
        context_method="acquire",
        runtime_pooled=True,
    ),
    PoolKind(
        library="psycopg_pool",
        pool_types=(
            "psycopg_pool.ConnectionPool",
            "psycopg_pool.NullConnectionPool",
            "psycopg_pool.pool.ConnectionPool",
            "psycopg_pool.null_pool.NullConnectionPool",
        ),
        factories=(),
        acquire=("getconn",),
        direct=(),
        release_on="pool",
        release="putconn",
        awaited=False,
        async_release=False,
        acquire_is_context=False,
        context_method="connection",
        runtime_pooled=True,
        driver="psycopg",
    ),
    PoolKind(
        library="psycopg_pool",
        pool_types=(
            "psycopg_pool.AsyncConnectionPool",
            "psycopg_pool.AsyncNullConnectionPool",
            "psycopg_pool.pool_async.AsyncConnectionPool",
            "psycopg_pool.null_pool_async.AsyncNullConnectionPool",
        ),
        factories=(),
        acquire=("getconn",),
        direct=(),
        release_on="pool",
        release="putconn",
        awaited=True,
        async_release=True,
        acquire_is_context=False,
        context_method="connection",
        runtime_pooled=True,
    ),
    PoolKind(
        library="psycopg2.pool",
        pool_types=(
            "psycopg2.pool.SimpleConnectionPool",
            "psycopg2.pool.ThreadedConnectionPool",
            "psycopg2.pool.AbstractConnectionPool",
        ),
        factories=(),
        acquire=("getconn",),
        direct=(),
        release_on="pool",
        release="putconn",
        awaited=False,
        async_release=False,
        acquire_is_context=False,
        context_method=None,
        runtime_pooled=True,
        driver="psycopg2",
    ),
    PoolKind(
        library="sqlalchemy",
        pool_types=("sqlalchemy.Engine", "sqlalchemy.engine.Engine", "sqlalchemy.engine.base.Engine"),
        factories=(
            "sqlalchemy.create_engine",
            "sqlalchemy.engine.create_engine",
            "sqlalchemy.engine_from_config",
            "sqlalchemy.engine.engine_from_config",
        ),
        acquire=("connect",),
        direct=(),
        release_on="conn",
        release="close",
        awaited=False,
        async_release=False,
        acquire_is_context=True,
        context_method="connect",
        runtime_pooled=True,
        driver="sqlalchemy",
    ),
    PoolKind(
        library="sqlalchemy",
        pool_types=("sqlalchemy.Engine", "sqlalchemy.engine.Engine", "sqlalchemy.engine.base.Engine"),
        factories=(
            "sqlalchemy.create_engine",
            "sqlalchemy.engine.create_engine",
            "sqlalchemy.engine_from_config",
            "sqlalchemy.engine.engine_from_config",
        ),
        acquire=("raw_connection",),
        direct=(),
        release_on="conn",
        release="close",
        awaited=False,
        async_release=False,
        acquire_is_context=False,
        context_method=None,
        runtime_pooled=False,
    ),
    PoolKind(
        library="sqlalchemy.ext.asyncio",
        pool_types=("sqlalchemy.ext.asyncio.AsyncEngine",),
        factories=("sqlalchemy.ext.asyncio.create_async_engine",),
        acquire=("connect",),
        direct=(),
        release_on="conn",
        release="close",
        awaited=True,
        async_release=True,
        acquire_is_context=True,
        context_method="connect",
        runtime_pooled=True,
    ),
    PoolKind(
        library="sqlalchemy.orm",
        pool_types=("sqlalchemy.orm.sessionmaker", "sqlalchemy.orm.session.sessionmaker"),
        factories=(),
        acquire=("",),
        direct=("sqlalchemy.orm.Session", "sqlalchemy.orm.session.Session"),
        release_on="conn",
        release="close",
        awaited=False,
        async_release=False,
        acquire_is_context=True,
        context_method=None,
        runtime_pooled=False,
        driver="sqlalchemy",
    ),
    PoolKind(
        library="sqlalchemy.ext.asyncio",
        pool_types=("sqlalchemy.ext.asyncio.async_sessionmaker",),
        factories=(),
        acquire=("",),
        direct=("sqlalchemy.ext.asyncio.AsyncSession",),
        release_on="conn",
        release="close",
        awaited=False,
        async_release=True,
        acquire_is_context=True,
        context_method=None,
        runtime_pooled=False,
    ),
    PoolKind(
        library="redis",
        pool_types=(
            "redis.ConnectionPool",
            "redis.BlockingConnectionPool",
            "redis.connection.ConnectionPool",
            "redis.connection.BlockingConnectionPool",
        ),
        factories=("redis.ConnectionPool.from_url", "redis.connection.ConnectionPool.from_url"),
        acquire=("get_connection",),
        direct=(),
        release_on="pool",
        release="release",
        awaited=False,
        async_release=False,
        acquire_is_context=False,
        context_method=None,
        runtime_pooled=False,
    ),
    PoolKind(
        library="redis.asyncio",
        pool_types=(
            "redis.asyncio.ConnectionPool",
            "redis.asyncio.BlockingConnectionPool",
            "redis.asyncio.connection.ConnectionPool",
            "redis.asyncio.connection.BlockingConnectionPool",
        ),
        factories=("redis.asyncio.ConnectionPool.from_url",),
        acquire=("get_connection",),
        direct=(),
        release_on="pool",
        release="release",
        awaited=True,
        async_release=True,
        acquire_is_context=False,
        context_method=None,
        runtime_pooled=False,
    ),
)

#: Attributes of a client object that hold its pool (`redis.Redis().connection_pool`).
_POOL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "redis": (
        "redis.Redis().connection_pool",
        "redis.StrictRedis().connection_pool",
        "redis.client.Redis().connection_pool",
        "redis.Redis.from_url().connection_pool",
    ),
    "redis.asyncio": (
        "redis.asyncio.Redis().connection_pool",
        "redis.asyncio.client.Redis().connection_pool",
        "redis.asyncio.Redis.from_url().connection_pool",
    ),
}

#: Every method name that gives a connection back, on a pool or on the connection.
RELEASE_METHODS = frozenset({k.release for k in POOLS} | {"close", "putconn", "release"})


@dataclass(frozen=True)
class Acquire:
    """A call that takes a connection: the pool kind and the pool's resolved form."""

    kind: PoolKind
    #: The resolved form of the pool (`asyncpg.create_pool()`), or of the direct callable.
    pool: str


def is_pool(resolved: Optional[str], kind: PoolKind) -> bool:
    """True when the resolved expression is a pool of `kind`: a constructor or factory call
    (`asyncpg.create_pool()`), a client's pool attribute, or an annotated parameter given in
    instance form (`asyncpg.Pool()` for `pool: asyncpg.Pool`)."""
    if resolved is None:
        return False
    return resolved in kind.pool_forms() or resolved in _POOL_ATTRIBUTES.get(kind.library, ())


def classify_acquire(pool: Optional[str], method: Optional[str], callee: Optional[str]) -> Optional[Acquire]:
    """The acquire a call is, from the resolved form of its receiver `pool` and its `method`
    name (`pool.acquire()`), or from its resolved `callee` for direct and called-pool forms
    (`Session(engine)`, `SessionLocal()`). None when it is not one we know."""
    for kind in POOLS:
        if callee is not None and callee in kind.direct:
            return Acquire(kind, callee)
        if method is not None and method in kind.acquire and is_pool(pool, kind):
            assert pool is not None
            return Acquire(kind, pool)
        if "" in kind.acquire and callee is not None and is_pool(callee, kind):
            return Acquire(kind, callee)
    return None


_CONNECTION_WORDS = frozenset({"conn", "connection", "connectable"})


def binds_borrowed_connection(ctx: FileContext, call: cst.Call, acquire: Acquire) -> bool:
    """`Session()`, `Session(connection)`, `AsyncSession(bind=conn)`: a session with no bind,
    or bound to a connection its caller owns, checks nothing out of a pool; closing the
    connection is the owner's job."""
    if acquire.pool not in acquire.kind.direct:
        return False
    if any(a.star for a in call.args):
        return False
    bind = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "bind"), None)
    if bind is None and call.args and call.args[0].keyword is None:
        bind = call.args[0].value
    if bind is None:
        return not any(a.keyword is not None and a.keyword.value == "binds" for a in call.args)
    for _ in range(3):
        if not isinstance(bind, (cst.Name, cst.Attribute)):
            return False
        resolved = ctx.resolve_expr(bind) or ""
        if resolved.endswith((".connect()", ".begin()")):
            return True
        ident = words(bind.value if isinstance(bind, cst.Name) else bind.attr.value)
        if ident and ident[-1] in _CONNECTION_WORDS:
            return True
        value = ctx.value_of(bind)
        if value is None or value is bind:
            return False
        bind = value  # `c = connection; Session(bind=c)`
    return False


# ---- DB-API drivers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Driver:
    """A database driver: what its connections and cursors look like, how it batches."""

    name: str
    #: Functions returning a connection.
    connect: tuple[str, ...]
    #: Connection and cursor classes (annotations).
    connection_types: tuple[str, ...]
    cursor_types: tuple[str, ...]
    #: `"executemany"`: `executemany` sends the batch efficiently; `"execute_batch"`: use
    #: `psycopg2.extras.execute_batch` (psycopg2's `executemany` is a loop); None: no fix.
    batch: Optional[str]
    #: Whether connections (not only cursors) have `executemany`.
    connection_executemany: bool


DRIVERS: dict[str, Driver] = {
    "sqlite3": Driver(
        "sqlite3",
        connect=("sqlite3.connect", "sqlite3.dbapi2.connect"),
        connection_types=("sqlite3.Connection",),
        cursor_types=("sqlite3.Cursor",),
        batch="executemany",
        connection_executemany=True,
    ),
    "psycopg": Driver(
        "psycopg",
        connect=("psycopg.connect", "psycopg.Connection.connect"),
        connection_types=("psycopg.Connection",),
        cursor_types=("psycopg.Cursor", "psycopg.ServerCursor"),
        batch="executemany",
        connection_executemany=False,
    ),
    "psycopg2": Driver(
        "psycopg2",
        connect=("psycopg2.connect",),
        connection_types=("psycopg2.extensions.connection",),
        cursor_types=("psycopg2.extensions.cursor",),
        batch="execute_batch",
        connection_executemany=False,
    ),
    "pymysql": Driver(
        "pymysql",
        connect=("pymysql.connect", "pymysql.Connect", "pymysql.connections.Connection"),
        connection_types=("pymysql.connections.Connection",),
        cursor_types=("pymysql.cursors.Cursor",),
        batch=None,
        connection_executemany=False,
    ),
    "mysql.connector": Driver(
        "mysql.connector",
        connect=("mysql.connector.connect",),
        connection_types=(),
        cursor_types=(),
        batch=None,
        connection_executemany=False,
    ),
    "asyncpg": Driver(
        "asyncpg",
        connect=("asyncpg.connect", "asyncpg.connection.connect"),
        connection_types=("asyncpg.Connection", "asyncpg.connection.Connection"),
        cursor_types=(),
        batch=None,
        connection_executemany=True,
    ),
    "sqlalchemy": Driver(
        "sqlalchemy",
        connect=(),
        connection_types=("sqlalchemy.Connection", "sqlalchemy.engine.Connection", "sqlalchemy.orm.Session"),
        cursor_types=(),
        batch=None,
        connection_executemany=False,
    ),
}


@dataclass(frozen=True)
class DbHandle:
    """An object that runs queries: a connection (or ORM session) or a cursor of a driver."""

    driver: Driver
    role: str  # "connection" or "cursor"


def _connection_forms() -> dict[str, str]:
    """Resolved form of a connection -> driver name."""
    forms: dict[str, str] = {}
    for driver in DRIVERS.values():
        for fn in driver.connect:
            forms[f"{fn}()"] = driver.name
        for cls in driver.connection_types:
            forms[f"{cls}()"] = driver.name
    for kind in POOLS:
        if kind.driver is None:
            continue
        for pool in (*kind.pool_forms(), *_POOL_ATTRIBUTES.get(kind.library, ())):
            for method in kind.acquire:
                forms[f"{pool}()" if method == "" else f"{pool}.{method}()"] = kind.driver
            if kind.context_method and kind.context_method not in kind.acquire:
                forms[f"{pool}.{kind.context_method}()"] = kind.driver
            if kind.library == "sqlalchemy":
                forms[f"{pool}.begin()"] = kind.driver
        for direct in kind.direct:
            forms[f"{direct}()"] = kind.driver
    return forms


_CONNECTIONS = _connection_forms()
_CURSORS = {f"{cls}()": driver.name for driver in DRIVERS.values() for cls in driver.cursor_types}


def db_handle(resolved: Optional[str]) -> Optional[DbHandle]:
    """What a resolved object is (see `resolve_object`): `sqlite3.connect()` -> a sqlite3
    connection, `sqlite3.connect().cursor()` or `sqlite3.Cursor()` -> a sqlite3 cursor."""
    if resolved is None:
        return None
    name = _CONNECTIONS.get(resolved)
    if name is not None:
        return DbHandle(DRIVERS[name], "connection")
    name = _CURSORS.get(resolved)
    if name is None and resolved.endswith(".cursor()"):
        name = _CONNECTIONS.get(resolved[: -len(".cursor()")])
    return DbHandle(DRIVERS[name], "cursor") if name is not None else None


def resolve_object(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> Optional[str]:
    """The resolved form of the object `expr` evaluates to, for the tables of this module.

    Like `FileContext.resolve_expr`, and also: through `await`, through a local callee
    (`SessionLocal()` with `SessionLocal = sessionmaker()` gives `sqlalchemy.orm.sessionmaker()()`),
    and an annotated parameter in instance form (`pool: asyncpg.Pool` gives `asyncpg.Pool()`).
    """
    if isinstance(expr, cst.Call) and depth <= 5:
        taken = _runtime_pooled(ctx, expr, depth)
        if taken is not None:
            return taken
    direct = ctx.resolve_expr(expr)
    if direct is not None and direct.startswith(_RUNTIME_POOLED_FORMS):
        direct = None  # follow the chain by hand to the pool `pooled` wraps
    if direct is not None or depth > 5:
        return direct
    if isinstance(expr, cst.Await):
        return resolve_object(ctx, expr.expression, depth + 1)
    if isinstance(expr, cst.Call):
        base = resolve_object(ctx, expr.func, depth + 1)
        return f"{base}()" if base else None
    if isinstance(expr, cst.Attribute):
        value = ctx.value_of(expr)
        if value is not None and value is not expr:
            return resolve_object(ctx, value, depth + 1)
        base = resolve_object(ctx, expr.value, depth + 1)
        return f"{base}.{expr.attr.value}" if base else None
    if isinstance(expr, cst.Name):
        value = ctx.value_of(expr)
        if value is not None and value is not expr:
            return resolve_object(ctx, value, depth + 1)
        annotation = ctx.annotated_type(expr)
        return f"{annotation}()" if annotation else None
    return None


#: The helper the runtime-style fixes write around a pool (`with pooled(pool) as conn:`).
_RUNTIME_POOLED = frozenset({"auditlint.runtime.pooled", "auditlint.runtime.pool.pooled"})
_RUNTIME_POOLED_FORMS = tuple(f"{name}()" for name in sorted(_RUNTIME_POOLED))


def _runtime_pooled(ctx: FileContext, call: cst.Call, depth: int) -> Optional[str]:
    """`pooled(pool)` of `auditlint.runtime` yields what the pool's own acquire gives: the
    resolved form of that acquire (`psycopg_pool.ConnectionPool().getconn()`), or None."""
    if ctx.qualname(call.func) not in _RUNTIME_POOLED or not call.args or call.args[0].keyword is not None:
        return None
    pool = resolve_object(ctx, call.args[0].value, depth + 1)
    for kind in POOLS:
        if kind.runtime_pooled and kind.driver is not None and kind.acquire and is_pool(pool, kind):
            method = kind.acquire[0]
            return f"{pool}()" if method == "" else f"{pool}.{method}()"
    return None

