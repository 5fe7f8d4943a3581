"""AL301 unreleased-connection: a connection taken from a pool that does not go back on every path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.pools import (
    RELEASE_METHODS,
    Acquire,
    binds_borrowed_connection,
    classify_acquire,
    resolve_object,
)
from auditlint.analysis.walk import iter_children, iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Patch, Rule, bad, ok

#: Calls that take over an object passed to them: the connection's owner is elsewhere.
_ESCAPE_CALLS = frozenset(
    {
        "append", "appendleft", "add", "extend", "insert", "put", "put_nowait", "setdefault",
        "enter_context", "enter_async_context", "push", "push_async_exit", "callback",
        "push_async_callback", "closing", "aclosing", "finalize", "set_result", "create_task",
        "ensure_future", "submit", "run_in_executor", "start_soon",
    }
)  # fmt: skip
#: Expression nodes a connection passes through unchanged on its way to a store or return.
_CARRIERS = (
    cst.Arg, cst.Tuple, cst.List, cst.Set, cst.Dict, cst.Element, cst.StarredElement,
    cst.DictElement, cst.StarredDictElement, cst.Await, cst.IfExp, cst.BooleanOperation,
)  # fmt: skip
_CATCH_ALL = frozenset({"BaseException", "Exception"})
_Statement = Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]


@dataclass
class _Site:
    """Where the connection is bound: `stmt` is `block.body[index]`."""

    call: cst.Call
    name: str
    stmt: cst.SimpleStatementLine
    block: cst.IndentedBlock
    index: int
    acquire: Acquire


def _callee_name(call: cst.Call) -> Optional[str]:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return None


def _is_release(node: cst.CSTNode, name: str) -> bool:
    """`pool.release(conn)`, `pool.putconn(conn)`, `conn.close()` and the like."""
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
        return False
    if node.func.attr.value not in RELEASE_METHODS:
        return False
    receiver = node.func.value
    if isinstance(receiver, cst.Name) and receiver.value == name:
        return True
    first = node.args[0] if node.args else None
    return (
        first is not None
        and first.keyword is None
        and not first.star
        and isinstance(first.value, cst.Name)
        and first.value.value == name
    )


def _releases(node: Optional[cst.CSTNode], name: str) -> bool:
    """True when `node`'s subtree (outside nested functions) releases `name`."""
    if node is None:
        return False
    if _is_release(node, name):
        return True
    return any(_is_release(n, name) for n in iter_descendants(node, into_scopes=False))


def _release_statement(stmt: cst.CSTNode, name: str) -> bool:
    """True when `stmt` is exactly one (possibly awaited) release of `name`."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    small = stmt.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    return _is_release(value, name)


def _cannot_raise(stmt: cst.CSTNode) -> bool:
    """Statements that cannot raise: `pass`, and assignments of literals or names."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    for small in stmt.body:
        if isinstance(small, cst.Pass):
            continue
        if isinstance(small, cst.Expr) and isinstance(
            small.value, (cst.SimpleString, cst.ConcatenatedString)
        ):
            continue
        value: Optional[cst.BaseExpression] = None
        if isinstance(small, cst.Assign) and all(isinstance(t.target, cst.Name) for t in small.targets):
            value = small.value
        elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
            value = small.value
        if value is None or not isinstance(
            value, (cst.Name, cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)
        ):
            return False
    return True


def _straight_line(stmts: Sequence[cst.CSTNode], name: str) -> bool:
    """No statement leaves the region early (return, raise, break/continue of an outer loop,
    yield) and none rebinds `name`: every run reaches the end of the region."""

    def visit(node: cst.CSTNode, in_loop: bool) -> bool:
        if isinstance(node, (cst.Return, cst.Raise, cst.Yield)):
            return False
        if isinstance(node, (cst.Break, cst.Continue)) and not in_loop:
            return False
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return True
        if isinstance(node, (cst.AssignTarget, cst.AsName)) and _binds(node, name):
            return False
        if isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For)) and _binds(node.target, name):
            return False
        if isinstance(node, cst.NamedExpr) and _binds(node.target, name):
            return False
        loop = in_loop or isinstance(node, (cst.For, cst.While))
        return all(visit(child, loop) for child in iter_children(node))

    return all(visit(s, False) for s in stmts)


def _binds(target: cst.CSTNode, name: str) -> bool:
    if isinstance(target, cst.Name):
        return target.value == name
    return any(isinstance(n, cst.Name) and n.value == name for n in iter_descendants(target))


def _is_catch_all(handler: Union[cst.ExceptHandler, cst.ExceptStarHandler]) -> bool:
    kind = handler.type
    if kind is None:
        return True
    names = [e.value for e in kind.elements] if isinstance(kind, cst.Tuple) else [kind]
    return any(isinstance(n, cst.Name) and n.value in _CATCH_ALL for n in names)


def _reraises(block: cst.CSTNode) -> bool:
    return any(isinstance(n, cst.Raise) for n in iter_descendants(block, into_scopes=False))


class _Uses:
    """Reads of the connection's name in a function: does ownership leave the function?"""

    def __init__(self, ctx: FileContext, fn: cst.FunctionDef, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.escapes = False
        self._walk(fn.body, [])

    def _walk(self, node: cst.CSTNode, parents: list[cst.CSTNode]) -> None:
        if self.escapes:
            return
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            # A closure over the connection may outlive the call: its owner is unknown.
            if isinstance(node, cst.ClassDef) or not self.ctx.facts(node).is_bound(self.name):
                if any(isinstance(n, cst.Name) and n.value == self.name for n in iter_descendants(node)):
                    self.escapes = True
            return
        if isinstance(node, cst.Name) and node.value == self.name and parents:
            if self._is_read(node, parents[-1]) and self._escaping(node, parents):
                self.escapes = True
            return
        parents.append(node)
        for child in iter_children(node):
            self._walk(child, parents)
        parents.pop()

    @staticmethod
    def _is_read(node: cst.Name, parent: cst.CSTNode) -> bool:
        if isinstance(parent, cst.Attribute):
            return parent.value is node
        if isinstance(parent, cst.Arg):
            return parent.keyword is not node
        if isinstance(parent, (cst.AssignTarget, cst.AsName, cst.NameItem, cst.Param)):
            return False
        if isinstance(parent, (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.NamedExpr)):
            return parent.target is not node
        return True

    def _escaping(self, node: cst.Name, parents: list[cst.CSTNode]) -> bool:
        child: cst.CSTNode = node
        through_call = False
        for anc in reversed(parents):
            if isinstance(anc, cst.Call):
                if child is anc.func:
                    return False
                if _callee_name(anc) in _ESCAPE_CALLS:
                    return True
                through_call = True
            elif isinstance(anc, (cst.Return, cst.Yield)):
                return True
            elif isinstance(anc, cst.WithItem):
                return True  # `with conn:` / `with wrap(conn):` manages it
            elif isinstance(anc, cst.Assign):
                targets = [t.target for t in anc.targets]
                return not through_call or not all(isinstance(t, cst.Name) for t in targets)
            elif isinstance(anc, (cst.AnnAssign, cst.AugAssign, cst.NamedExpr)):
                return not through_call or not isinstance(anc.target, cst.Name)
            elif not isinstance(anc, _CARRIERS):
                return False
            child = anc
        return False


class UnreleasedConnection(Rule):
    """
    ## What it does
    Finds a connection taken from a pool and bound to a name that is not given back on every
    path: never released, released only on the normal path, or released in a `finally` whose
    `try` starts too late (statements between the acquire and the `try` can raise).

    Pools are known by resolved name, through imports, aliases, simple bindings
    (`pool = await asyncpg.create_pool(...)`), `self.pool` assigned in the class and
    annotated parameters: asyncpg, aiopg and aiomysql (`acquire`/`release`), psycopg_pool
    (`getconn`/`putconn`), psycopg2.pool (`getconn`/`putconn`), SQLAlchemy engines
    (`connect()`, `raw_connection()` -> `close()`) and sessions (`Session()`,
    `sessionmaker()()` -> `close()`), and redis connection pools (`get_connection`/`release`).

    Not reported: an acquire used as a `with` item; a release in a `finally` (or in a
    catch-all `except` that re-raises, plus the normal path); a connection whose ownership
    leaves the function (returned, yielded, stored on an attribute or in a container, passed to
    `ExitStack.enter_context`, `closing()`, a task, or captured by a nested function);
    a SQLAlchemy session with no bind, or bound to a connection its caller owns
    (`Session(connection)`: it checks nothing out of the pool); module-level code; and pools the rule cannot identify.

    ## Why is this bad?
    Each error between the acquire and the release keeps a connection out of the pool for
    good. Under a burst of errors the pool runs dry and every request waits for a connection
    that never comes back — the audit's "missing connection pool release guards".

    ## Example
    ```python
    async def load(pool, claim_id):
        conn = await pool.acquire()
        row = await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
        await pool.release(conn)
        return row
    ```

    ## Use instead
    ```python
    async def load(pool, claim_id):
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
        return row
    ```

    ## Fix safety
    Offered only when the statements from the acquire to the release run straight through (no
    `return`, `raise`, `break`, `continue` or `yield` that would leave early, no rebinding of
    the name) and the release is a statement of the same block (or the last statement of the
    `finally` that comes too late). Then it is **safe**: on the normal path the connection goes
    back at the same point, and on error paths it now goes back too.

    - Pools whose acquire is a context manager with the same release get it:
      `async with pool.acquire() as conn:`, `with engine.connect() as conn:`,
      `with Session() as session:`, the explicit release removed.
    - psycopg2.pool (no context manager) and psycopg_pool (whose `connection()` also commits)
      get `with pooled(pool) as conn:` in runtime style, and otherwise — like raw SQLAlchemy
      connections and redis pools — the statements up to the release move into a `try` whose
      `finally` releases.

    ## Options
    None.
    """

    code = "AL301"
    name = "unreleased-connection"
    summary = "Pooled connection not released on every path"
    triggers = ("acquire", "getconn", "connect", "Session", "sessionmaker", "get_connection")
    fix_safety = "safe"
    examples = (
        bad(
            """
            import asyncpg

            async def load(claim_id):
                pool = await asyncpg.create_pool("postgresql://db/claims")
                conn = await pool.acquire()
                row = await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
                await pool.release(conn)
                return row
            """,
            fixed="""
            import asyncpg

            async def load(claim_id):
                pool = await asyncpg.create_pool("postgresql://db/claims")
                async with pool.acquire() as conn:
                    row = await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
                return row
            """,
            title="pool = await asyncpg.create_pool(...)",
        ),
        bad(
            """
            import asyncpg as pg

            class Claims:
                async def start(self):
                    self.pool = await pg.create_pool("postgresql://db/claims")

                async def load(self, claim_id):
                    conn = await self.pool.acquire()
                    await conn.execute("SET search_path TO billing")
                    try:
                        return await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
                    finally:
                        await self.pool.release(conn)
            """,
            fixed="""
            import asyncpg as pg

            class Claims:
                async def start(self):
                    self.pool = await pg.create_pool("postgresql://db/claims")

                async def load(self, claim_id):
                    async with self.pool.acquire() as conn:
                        await conn.execute("SET search_path TO billing")
                        return await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
            """,
            title="self.pool, an alias, and the hole before the try",
        ),
        bad(
            """
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool("dbname=claims")

            def count():
                conn = pool.getconn()
                total = conn.execute("SELECT count(*) FROM claims").fetchone()
                pool.putconn(conn)
                return total
            """,
            fixed="""
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool("dbname=claims")

            def count():
                conn = pool.getconn()
                try:
                    total = conn.execute("SELECT count(*) FROM claims").fetchone()
                finally:
                    pool.putconn(conn)
                return total
            """,
            title="psycopg_pool: try/finally (its connection() would also commit)",
        ),
        bad(
            """
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool("dbname=claims")

            def count():
                conn = pool.getconn()
                total = conn.execute("SELECT count(*) FROM claims").fetchone()
                pool.putconn(conn)
                return total
            """,
            fixed="""
            from psycopg_pool import ConnectionPool
            from auditlint.runtime import pooled

            pool = ConnectionPool("dbname=claims")

            def count():
                with pooled(pool) as conn:
                    total = conn.execute("SELECT count(*) FROM claims").fetchone()
                return total
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import psycopg2.pool

            pool = psycopg2.pool.ThreadedConnectionPool(1, 10, "dbname=claims")

            def rename(claim_id, name):
                conn = pool.getconn()
                with conn.cursor() as cur:
                    cur.execute("UPDATE claims SET name = %s WHERE id = %s", (name, claim_id))
                conn.commit()
                pool.putconn(conn)
            """,
            fixed="""
            import psycopg2.pool

            pool = psycopg2.pool.ThreadedConnectionPool(1, 10, "dbname=claims")

            def rename(claim_id, name):
                conn = pool.getconn()
                try:
                    with conn.cursor() as cur:
                        cur.execute("UPDATE claims SET name = %s WHERE id = %s", (name, claim_id))
                    conn.commit()
                finally:
                    pool.putconn(conn)
            """,
        ),
        bad(
            """
            from psycopg2 import pool as pg_pool

            db = pg_pool.SimpleConnectionPool(1, 10, "dbname=claims")

            def rename(claim_id, name):
                conn = db.getconn()
                conn.cursor().execute("UPDATE claims SET name = %s WHERE id = %s", (name, claim_id))
                db.putconn(conn)
            """,
            fixed="""
            from psycopg2 import pool as pg_pool
            from auditlint.runtime import pooled

            db = pg_pool.SimpleConnectionPool(1, 10, "dbname=claims")

            def rename(claim_id, name):
                with pooled(db) as conn:
                    conn.cursor().execute("UPDATE claims SET name = %s WHERE id = %s", (name, claim_id))
            """,
            fix_style="runtime",
            title="psycopg2.pool has no context manager: pooled() in runtime style",
        ),
        bad(
            """
            import sqlalchemy as sa

            engine = sa.create_engine("postgresql://db/claims")

            def names():
                conn = engine.connect()
                rows = conn.execute(sa.text("SELECT name FROM claims")).all()
                conn.close()
                return rows
            """,
            fixed="""
            import sqlalchemy as sa

            engine = sa.create_engine("postgresql://db/claims")

            def names():
                with engine.connect() as conn:
                    rows = conn.execute(sa.text("SELECT name FROM claims")).all()
                return rows
            """,
        ),
        bad(
            """
            from sqlalchemy.orm import sessionmaker

            SessionLocal = sessionmaker()

            def rename(claim, name):
                session = SessionLocal()
                claim.name = name
                session.add(claim)
                session.commit()
                session.close()
            """,
            fixed="""
            from sqlalchemy.orm import sessionmaker

            SessionLocal = sessionmaker()

            def rename(claim, name):
                with SessionLocal() as session:
                    claim.name = name
                    session.add(claim)
                    session.commit()
            """,
            title="sessionmaker()()",
        ),
        bad(
            """
            import asyncpg

            async def handler(pool: asyncpg.Pool, claim_id):
                conn = await pool.acquire()
                row = await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
                if row is None:
                    return None
                await pool.release(conn)
                return row
            """,
            title="an early return skips the release: reported, no fix",
        ),
        bad(
            """
            import asyncpg

            async def serve():
                pool = await asyncpg.create_pool("postgresql://db/claims")

                async def handle(claim_id):
                    conn = await pool.acquire()
                    return await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)

                return handle
            """,
            title="never released, in a nested function",
        ),
        bad(
            """
            from sqlalchemy.orm import Session

            def rename(engine, claim, name):
                session = Session(engine)
                claim.name = name
                session.commit()
            """,
        ),
        bad(
            """
            import redis

            pool = redis.ConnectionPool(host="cache")

            def ping():
                conn = pool.get_connection("PING")
                conn.send_command("PING")
                reply = conn.read_response()
                pool.release(conn)
                return reply
            """,
            fixed="""
            import redis

            pool = redis.ConnectionPool(host="cache")

            def ping():
                conn = pool.get_connection("PING")
                try:
                    conn.send_command("PING")
                    reply = conn.read_response()
                finally:
                    pool.release(conn)
                return reply
            """,
        ),
        ok(
            """
            import asyncpg

            async def load(pool: asyncpg.Pool, claim_id):
                async with pool.acquire() as conn:
                    return await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
            """,
            title="the acquire is the with item",
        ),
        ok(
            """
            import asyncpg

            async def load(pool: asyncpg.Pool, claim_id):
                conn = await pool.acquire()
                try:
                    return await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
                finally:
                    await pool.release(conn)

            async def load_guarded(pool: asyncpg.Pool, claim_id):
                conn = None
                try:
                    conn = await pool.acquire()
                    return await conn.fetchrow("SELECT * FROM claims WHERE id = $1", claim_id)
                finally:
                    if conn is not None:
                        await pool.release(conn)
            """,
            title="try/finally release",
        ),
        ok(
            """
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool("dbname=claims")

            def count():
                conn = pool.getconn()
                try:
                    total = conn.execute("SELECT count(*) FROM claims").fetchone()
                except BaseException:
                    pool.putconn(conn)
                    raise
                pool.putconn(conn)
                return total
            """,
            title="an except that re-raises, plus the normal path",
        ),
        ok(
            """
            import contextlib
            import psycopg2.pool

            class Repo:
                def __init__(self):
                    self.pool = psycopg2.pool.SimpleConnectionPool(1, 5, "dbname=claims")

                def open(self):
                    conn = self.pool.getconn()
                    return conn

                def keep(self):
                    conn = self.pool.getconn()
                    self.conn = conn

                def collect(self, conns):
                    conn = self.pool.getconn()
                    conns.append(conn)

                def stacked(self, stack: contextlib.ExitStack):
                    conn = self.pool.getconn()
                    stack.callback(self.pool.putconn, conn)
                    return conn.cursor()

                def borrowed(self):
                    conn = self.pool.getconn()
                    yield conn
                    self.pool.putconn(conn)
            """,
            title="ownership leaves the function",
        ),
        ok(
            """
            import contextlib
            from sqlalchemy import create_engine

            engine = create_engine("sqlite://")

            def run(stack: contextlib.ExitStack):
                conn = stack.enter_context(engine.connect())
                return conn.exec_driver_sql("SELECT 1").all()

            def raw():
                with contextlib.closing(engine.raw_connection()) as conn:
                    return conn.cursor().execute("SELECT 1")
            """,
            title="ExitStack.enter_context and closing()",
        ),
        ok(
            """
            class Pool:
                def acquire(self):
                    return object()

            async def f(pool, other):
                conn = await pool.acquire()
                conn2 = other.getconn()
                return 1

            conn = Pool().acquire()
            """,
            title="unknown pools and module-level code",
        ),
        ok(
            """
            from sqlalchemy.orm import Session

            def check(engine, connection):
                session = Session(connection)
                session.query(1).all()
                c = connection
                scratch = Session(bind=c)
                scratch.begin()
                unbound = Session()
                unbound.add(1)
                with engine.connect() as conn:
                    other = Session(bind=conn)
                    other.add(1)
            """,
            title="a session with no bind, or bound to a connection its caller owns",
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        fn = ctx.function
        if not isinstance(fn, cst.FunctionDef):
            return
        acquire = self._classify(node, ctx)
        if acquire is None:
            return
        ancestors = ctx.ancestors()
        awaited = bool(ancestors) and isinstance(ancestors[0], cst.Await)
        if acquire.kind.awaited is not None and awaited != acquire.kind.awaited:
            return  # asyncpg's un-awaited `acquire()` is a context object, not a connection
        rest = ancestors[1:] if awaited else ancestors
        if len(rest) < 3:
            return
        holder, line, block = rest[0], rest[1], rest[2]
        display = self._display(node, ctx)
        if isinstance(holder, cst.Expr) and isinstance(line, cst.SimpleStatementLine):
            if acquire.kind.release_on == "pool":
                ctx.report(node, f"Connection from `{display}` is dropped and never released")
            return
        name = self._bound_name(holder)
        if (
            name is None
            or not isinstance(line, cst.SimpleStatementLine)
            or len(line.body) != 1
            or not isinstance(block, cst.IndentedBlock)
        ):
            return
        index = next((i for i, s in enumerate(block.body) if s is line), -1)
        if index < 0 or not self._simple_bindings(ctx, name):
            return
        if _Uses(ctx, fn, name).escapes:
            return
        site = _Site(node, name, line, block, index, acquire)
        self._check(site, ctx, display)

    # ---- finding the acquire ---------------------------------------------------------------

    def _classify(self, node: cst.Call, ctx: FileContext) -> Optional[Acquire]:
        func = node.func
        # `Session(engine)` resolves directly; `SessionLocal()` calls an instance of a factory.
        callee = ctx.resolve_call_target(func) or resolve_object(ctx, func)
        if isinstance(func, cst.Attribute):
            return classify_acquire(resolve_object(ctx, func.value), func.attr.value, callee)
        acquire = classify_acquire(None, None, callee)
        if acquire is not None and binds_borrowed_connection(ctx, node, acquire):
            return None
        return acquire

    @staticmethod
    def _bound_name(holder: cst.CSTNode) -> Optional[str]:
        if isinstance(holder, cst.Assign) and len(holder.targets) == 1:
            target = holder.targets[0].target
            return target.value if isinstance(target, cst.Name) else None
        if isinstance(holder, cst.AnnAssign) and isinstance(holder.target, cst.Name):
            return holder.target.value
        return None

    @staticmethod
    def _simple_bindings(ctx: FileContext, name: str) -> bool:
        """The name is bound only by plain assignments in this function (`conn = None` too)."""
        facts = ctx.facts()
        if name in facts.declared_outer:
            return False
        return all(b.kind in ("assign", "annassign") for b in facts.bindings.get(name, ()))

    @staticmethod
    def _display(node: cst.Call, ctx: FileContext) -> str:
        text = ctx.code(node)
        if len(text) > 40 or "\n" in text:
            text = ctx.code(node.func) + "(...)"
        return text if len(text) <= 60 else text[:57] + "..."

    # ---- is the release guaranteed? --------------------------------------------------------

    def _check(self, site: _Site, ctx: FileContext, display: str) -> None:
        name = site.name
        noun = "Session" if site.acquire.kind.direct else "Connection"
        for t in ctx.trys:
            if isinstance(t, (cst.Try, cst.TryStar)):
                if _releases(t.finalbody, name) or any(_releases(h, name) for h in t.handlers):
                    return
        body = site.block.body
        after = list(body[site.index + 1 :])
        for offset, stmt in enumerate(after):
            if isinstance(stmt, (cst.Try, cst.TryStar)) and self._guards(stmt, name, after[offset + 1 :]):
                between = after[:offset]
                if all(_cannot_raise(s) for s in between):
                    return
                fix = self._fix_late_try(site, ctx, between, stmt)
                ctx.report(
                    site.call, f"{noun} from `{display}` leaks if a statement before the `try` raises", fix
                )
                return
            if _release_statement(stmt, name):
                between = after[:offset]
                if all(_cannot_raise(s) for s in between):
                    return
                if not _straight_line(between, name):
                    ctx.report(site.call, f"{noun} from `{display}` is not released on every path")
                    return
                fix = self._fix(site, ctx, between, stmt, None)
                ctx.report(site.call, f"{noun} from `{display}` is not released if an error occurs", fix)
                return
        if any(_releases(s, name) for s in after) or self._released_later(site, ctx):
            ctx.report(site.call, f"{noun} from `{display}` is not released on every path")
            return
        ctx.report(site.call, f"{noun} from `{display}` is never released")

    @staticmethod
    def _guards(stmt: Union[cst.Try, cst.TryStar], name: str, rest: Sequence[cst.CSTNode]) -> bool:
        if _releases(stmt.finalbody, name):
            return True
        errors = any(
            _is_catch_all(h) and _releases(h.body, name) and _reraises(h.body) for h in stmt.handlers
        )
        if not errors:
            return False
        normal = (
            bool(stmt.body.body)
            and _release_statement(stmt.body.body[-1], name)
            or _releases(stmt.orelse, name)
            or any(_release_statement(s, name) for s in rest)
        )
        return bool(normal)

    @staticmethod
    def _released_later(site: _Site, ctx: FileContext) -> bool:
        fn = ctx.function
        return fn is not None and any(
            _is_release(n, site.name) for n in iter_descendants(fn.body, into_scopes=False)
        )

    # ---- fixes -----------------------------------------------------------------------------

    def _fix_late_try(
        self,
        site: _Site,
        ctx: FileContext,
        between: list[cst.BaseStatement],
        stmt: Union[cst.Try, cst.TryStar],
    ) -> Optional[Patch]:
        """`conn = acquire(); setup(conn); try: ... finally: release(conn)`: guard the setup too."""
        if not isinstance(stmt, cst.Try) or stmt.finalbody is None or not _straight_line(between, site.name):
            return None
        final = list(stmt.finalbody.body.body) if isinstance(stmt.finalbody.body, cst.IndentedBlock) else []
        if not final or not _release_statement(final[-1], site.name):
            return None
        release = final[-1]
        if len(final) > 1:
            inner: list[cst.BaseStatement] = [
                stmt.with_changes(
                    finalbody=stmt.finalbody.with_changes(
                        body=stmt.finalbody.body.with_changes(body=final[:-1])
                    )
                )
            ]
        elif stmt.handlers:
            inner = [stmt.with_changes(finalbody=None)]
        elif isinstance(stmt.body, cst.IndentedBlock):
            inner = list(stmt.body.body)
        else:
            return None
        return self._fix(site, ctx, between, release, (stmt, inner))

    def _fix(
        self,
        site: _Site,
        ctx: FileContext,
        between: Sequence[cst.BaseStatement],
        release: cst.BaseStatement,
        late_try: Optional[tuple[cst.BaseStatement, list[cst.BaseStatement]]],
    ) -> Optional[Patch]:
        """Guard the region from the acquire to the release: a context manager, or try/finally."""
        originals: list[cst.BaseStatement] = list(between)
        guarded: list[cst.BaseStatement] = list(between)
        if late_try is not None:
            originals.append(late_try[0])
            guarded.extend(late_try[1])
        else:
            originals.append(release)
        if not guarded:
            return None
        kind = site.acquire.kind
        call = site.call
        func = call.func
        changes: dict[cst.CSTNode, Union[cst.CSTNode, cst.RemovalSentinel]] = {}
        imports: list[ImportSpec] = []
        manager: Optional[cst.BaseExpression] = None
        asynchronous = False
        if kind.acquire_is_context:
            manager, asynchronous = call, kind.async_release
            title = f"Use `{'async with' if asynchronous else 'with'} {ctx.code(call)}`"
        elif (
            ctx.fix_style == "runtime"
            and kind.runtime_pooled
            and isinstance(func, cst.Attribute)
            and not call.args
        ):
            manager = cst.Call(func=cst.Name("pooled"), args=[cst.Arg(func.value)])
            asynchronous = bool(kind.awaited)
            imports.append(ImportSpec("auditlint.runtime", "pooled"))
            title = f"Use `{'async with' if asynchronous else 'with'} pooled({ctx.code(func.value)})`"
        if manager is not None:
            first = guarded[0]
            guarded[0] = first.with_changes(leading_lines=()) if hasattr(first, "leading_lines") else first
            new: cst.BaseStatement = cst.With(
                items=[cst.WithItem(item=manager, asname=cst.AsName(name=cst.Name(site.name)))],
                # The acquire line's trailing comment (a noqa, say) stays on the `with` line.
                body=cst.IndentedBlock(body=guarded, header=site.stmt.trailing_whitespace),
                asynchronous=cst.Asynchronous() if asynchronous else None,
                leading_lines=site.stmt.leading_lines,
            )
            changes[site.stmt] = new
        else:
            first_original = originals[0]
            leading = getattr(first_original, "leading_lines", ())
            first = guarded[0]
            guarded[0] = first.with_changes(leading_lines=()) if hasattr(first, "leading_lines") else first
            release_line = (
                release.with_changes(leading_lines=())
                if isinstance(release, cst.SimpleStatementLine)
                else release
            )
            changes[first_original] = cst.Try(
                body=cst.IndentedBlock(body=guarded),
                finalbody=cst.Finally(body=cst.IndentedBlock(body=[release_line])),
                leading_lines=leading,
            )
            originals = originals[1:]
            title = "Release the connection in a `finally`"
        for stmt in originals:
            changes[stmt] = cst.RemoveFromParent()
        return Patch.safe(changes, title=title, imports=imports)
