"""AL203 query-in-loop: one synchronous database round trip per item of a loop."""

from __future__ import annotations

from typing import Optional, Union

import libcst as cst

from auditlint.analysis.calls import has_star_args, has_star_kwargs, keyword, positionals
from auditlint.analysis.loops import leaves_loop_after, runs_subtests
from auditlint.analysis.pools import DbHandle, db_handle, resolve_object
from auditlint.analysis.sql import READ_VERBS, WRITE_VERBS, sql_text, statement_verbs, text_call_argument
from auditlint.analysis.structure import method_call_in_loop
from auditlint.analysis.walk import iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Patch, Rule, bad, ok

_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_SQL_KEYWORDS = ("sql", "query", "operation", "statement")
_PARAM_KEYWORDS = ("parameters", "params", "vars", "args", "parameters_list")
#: Verbs whose statement `executemany` can batch (sqlite3 refuses anything else).
_BATCHABLE = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT"})
#: SQLAlchemy query chains end in one of these; the chain runs one query.
_ORM_TERMINALS = frozenset({"first", "one", "one_or_none", "all", "scalar", "get", "count", "exists"})
#: Django manager methods that run one query per call.
_DJANGO_QUERIES = frozenset(
    {"get", "get_or_create", "update_or_create", "create", "first", "last", "exists", "count"}
)

#: Words in a loop header that say each item is already a batch of rows.
_BATCH_WORDS = ("chunk", "batch", "page")

Loop = Union[cst.For, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp, cst.Lambda]


def _names(node: Optional[cst.CSTNode]) -> set[str]:
    """Names read in an expression (attribute names and keywords excluded)."""
    if node is None:
        return set()
    found: set[str] = set()
    nodes = [node, *iter_descendants(node)]
    skip: set[int] = set()
    for n in nodes:
        if isinstance(n, cst.Attribute):
            skip.add(id(n.attr))
        elif isinstance(n, cst.Arg) and n.keyword is not None:
            skip.add(id(n.keyword))
        elif isinstance(n, cst.Name) and id(n) not in skip:
            found.add(n.value)
    return found


def _bound_in(node: cst.CSTNode) -> set[str]:
    """Names bound anywhere inside `node`: loop targets, assignments, walrus, with-as."""
    out: set[str] = set()
    for n in [node, *iter_descendants(node, into_scopes=False)]:
        targets: list[cst.CSTNode] = []
        if isinstance(n, cst.AssignTarget):
            targets = [n.target]
        elif isinstance(n, (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.NamedExpr)):
            targets = [n.target]
        elif isinstance(n, cst.AsName):
            targets = [n.name]
        for t in targets:
            if isinstance(t, cst.Name):
                out.add(t.value)
            else:
                out.update(x.value for x in iter_descendants(t) if isinstance(x, cst.Name))
    return out


def _varying(loop: Loop) -> set[str]:
    """Names whose value changes from one iteration to the next."""
    if isinstance(loop, cst.Lambda):
        params = loop.params
        return {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    if isinstance(loop, cst.For):
        return _names(loop.target) | _bound_in(loop.body)
    out = _bound_in(loop.for_in)
    elt = loop.key if isinstance(loop, cst.DictComp) else loop.elt
    return out | _bound_in(elt)


class QueryInLoop(Rule):
    """
    ## What it does
    Finds synchronous queries run once per item of a `for` loop, a comprehension or a
    `map(lambda ...)`: `cursor.execute(sql, params)`, `connection.execute(...)`,
    `session.execute(...)` where the SQL is the same each time and only the parameters change,
    and per-row ORM queries (SQLAlchemy `session.get(Model, id)`,
    `session.query(...)....first()`, Django `Model.objects.get(...)` and friends).

    The receiver must resolve (through imports and simple bindings) to a connection, cursor or
    session of a known driver (sqlite3, psycopg, psycopg2, pymysql, mysql.connector,
    SQLAlchemy, including connections taken from pools), or the SQL must be a literal
    statement (`INSERT ...`, `SELECT ...`).

    Not reported: iterating over the result of a query (`for row in cur.execute(...)`), a
    loop over different statements (a migration script: the SQL changes per item),
    `executemany`, the `else` clause of a loop, `while` loops (polling and pagination),
    queries whose parameters do not change, loops over chunks, batches or pages (each item is
    already many rows), a query that a `return` or `break` always follows (it runs once), loops
    of test cases (`with self.subTest(...)` in the body), and awaited queries (that is AL201's
    await-in-loop).

    ## Why is this bad?
    Each iteration pays a full network round trip and a statement execution: a thousand rows
    are a thousand round trips, 10-100x slower than one batched statement — the audit's
    "sequential database queries in loops".

    ## Example
    ```python
    def save(conn, rows):
        for row in rows:
            conn.execute("INSERT INTO claims (id, total) VALUES (?, ?)", (row.id, row.total))
    ```

    ## Use instead
    ```python
    def save(conn, rows):
        conn.executemany("INSERT INTO claims (id, total) VALUES (?, ?)", [(row.id, row.total) for row in rows])
    ```

    ## Fix safety
    Offered when the loop body is only `execute(sql, params)` on a sqlite3 or psycopg 3
    cursor (or a sqlite3 connection) with an `INSERT`, `UPDATE`, `DELETE` or `REPLACE`
    statement: `executemany(sql, [params for ...])`; for psycopg2, whose `executemany` is
    itself a loop, `psycopg2.extras.execute_batch(cur, sql, [params for ...])`. It is **unsafe**:
    every parameter tuple is built before the first row is sent, so an error while building
    them now writes nothing instead of the rows before it, and a driver error surfaces once
    for the batch. (asyncpg's `executemany`, the fix of AL201 for awaited queries, is
    atomic: all rows or none.) A loop variable read after the loop, or parameters that read
    the cursor, keep the loop. `SELECT` in a loop is reported without a fix.

    ## Options
    None.
    """

    code = "AL203"
    name = "query-in-loop"
    summary = "Database query once per loop item"
    triggers = ("execute", "objects", "query", ".get(")
    structure = method_call_in_loop({"execute"} | _ORM_TERMINALS | _DJANGO_QUERIES)
    fix_safety = "unsafe"
    examples = (
        bad(
            """
            from auditlint.runtime import pooled
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool("dbname=billing", open=False)

            def book(payments):
                with pooled(pool) as conn:
                    with conn.cursor() as cur:
                        for p in payments:
                            cur.execute("INSERT INTO payments (claim_id) VALUES (%s)", (p.claim_id,))
            """,
            fixed="""
            from auditlint.runtime import pooled
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool("dbname=billing", open=False)

            def book(payments):
                with pooled(pool) as conn:
                    with conn.cursor() as cur:
                        cur.executemany("INSERT INTO payments (claim_id) VALUES (%s)", [(p.claim_id,) for p in payments])
            """,
            title="a connection from `auditlint.runtime.pooled` is one of the pool's",
        ),
        bad(
            """
            import sqlite3

            def save(path, claims):
                conn = sqlite3.connect(path)
                for claim in claims:
                    conn.execute("INSERT INTO claims (id, total) VALUES (?, ?)", (claim.id, claim.total))
                conn.commit()
            """,
            fixed="""
            import sqlite3

            def save(path, claims):
                conn = sqlite3.connect(path)
                conn.executemany("INSERT INTO claims (id, total) VALUES (?, ?)", [(claim.id, claim.total) for claim in claims])
                conn.commit()
            """,
        ),
        bad(
            """
            import sqlite3 as sq

            SQL = "UPDATE claims SET total = ? WHERE id = ?"

            def reprice(path, prices):
                cur = sq.connect(path).cursor()
                for claim_id, total in prices.items():
                    cur.execute(SQL, (total, claim_id))
            """,
            fixed="""
            import sqlite3 as sq

            SQL = "UPDATE claims SET total = ? WHERE id = ?"

            def reprice(path, prices):
                cur = sq.connect(path).cursor()
                cur.executemany(SQL, [(total, claim_id) for claim_id, total in prices.items()])
            """,
            title="an alias, a cursor and a module-level SQL constant",
        ),
        bad(
            """
            import psycopg

            def archive(ids):
                with psycopg.connect("dbname=claims") as conn, conn.cursor() as cur:
                    for claim_id in ids:
                        cur.execute("DELETE FROM claims WHERE id = %s", (claim_id,))
            """,
            fixed="""
            import psycopg

            def archive(ids):
                with psycopg.connect("dbname=claims") as conn, conn.cursor() as cur:
                    cur.executemany("DELETE FROM claims WHERE id = %s", [(claim_id,) for claim_id in ids])
            """,
        ),
        bad(
            """
            import psycopg2

            def archive(ids):
                conn = psycopg2.connect("dbname=claims")
                with conn.cursor() as cur:
                    for claim_id in ids:
                        cur.execute("DELETE FROM claims WHERE id = %s", (claim_id,))
            """,
            fixed="""
            import psycopg2
            import psycopg2.extras

            def archive(ids):
                conn = psycopg2.connect("dbname=claims")
                with conn.cursor() as cur:
                    psycopg2.extras.execute_batch(cur, "DELETE FROM claims WHERE id = %s", [(claim_id,) for claim_id in ids])
            """,
            title="psycopg2: execute_batch, its executemany is a loop",
        ),
        bad(
            """
            import sqlite3

            def totals(conn: sqlite3.Connection, ids):
                out = []
                for claim_id in ids:
                    out.append(conn.execute("SELECT total FROM claims WHERE id = ?", (claim_id,)).fetchone())
                return out
            """,
            title="SELECT in a loop: reported only",
        ),
        bad(
            """
            import sqlite3

            def totals(conn: sqlite3.Connection, ids):
                return [conn.execute("SELECT total FROM claims WHERE id = ?", (i,)).fetchone() for i in ids]
            """,
            title="a comprehension",
        ),
        bad(
            """
            def save(db, claims):
                list(map(lambda c: db.execute("INSERT INTO claims (id) VALUES (%s)", (c.id,)), claims))
            """,
            title="map over a collection, literal SQL on an unknown receiver",
        ),
        bad(
            """
            import sqlite3

            def save(conn: sqlite3.Connection, claims):
                for claim in claims:
                    conn.execute("INSERT INTO claims (id) VALUES (?)", (claim.id,))
                return claim
            """,
            title="the loop variable is read after the loop: no fix",
        ),
        bad(
            """
            from sqlalchemy.orm import sessionmaker

            SessionLocal = sessionmaker()

            def payers(claims):
                session = SessionLocal()
                for claim in claims:
                    claim.payer = session.get(Payer, claim.payer_id)
                for claim in claims:
                    claim.notes = session.query(Note).filter_by(claim_id=claim.id).all()
            """,
            count=2,
            title="ORM per-row queries",
        ),
        bad(
            """
            def payers(claims):
                for claim in claims:
                    claim.payer = Payer.objects.get(pk=claim.payer_id)
            """,
            title="Django manager",
        ),
        ok(
            """
            import sqlite3

            def migrate(conn: sqlite3.Connection):
                for statement in [
                    "CREATE TABLE claims (id INTEGER PRIMARY KEY)",
                    "CREATE INDEX claims_total ON claims (total)",
                ]:
                    conn.execute(statement)
            """,
            title="a migration script: a constant list of different statements",
        ),
        ok(
            """
            import sqlite3

            def report(conn: sqlite3.Connection, claims):
                for row in conn.execute("SELECT id, total FROM claims"):
                    print(row)
                conn.executemany("INSERT INTO claims (id) VALUES (?)", [(c.id,) for c in claims])
                for claim in claims:
                    print(claim)
                else:
                    conn.execute("INSERT INTO audit (event) VALUES (?)", ("done",))
            """,
            title="iterating over a result, executemany, for-else",
        ),
        ok(
            """
            import sqlite3

            def poll(conn: sqlite3.Connection, tables, last):
                while True:
                    rows = conn.execute("SELECT * FROM jobs WHERE id > ?", (last,)).fetchall()
                    if not rows:
                        break
                    last = rows[-1][0]
                for table in tables:
                    conn.execute(f"DELETE FROM {table}")
                for _ in range(3):
                    conn.execute("SELECT 1")
            """,
            title="while loops, SQL that changes per item, queries whose parameters do not change",
        ),
        ok(
            """
            import sqlite3

            def save(conn: sqlite3.Connection, rows, chunks):
                for chunk in chunks(rows, 500):
                    conn.execute("INSERT INTO claims (id) SELECT value FROM json_each(?)", (chunk,))
            """,
            title="a loop over chunks already batches",
        ),
        ok(
            """
            import asyncpg

            async def save(conn: asyncpg.Connection, claims):
                for claim in claims:
                    await conn.execute("INSERT INTO claims (id) VALUES ($1)", claim.id)
            """,
            title="awaited queries are AL201's",
        ),
        ok(
            """
            def handle(events, bus, cache):
                for event in events:
                    bus.execute(event.command, event.args)
                    cache.get(event.key)
            """,
            title="an unknown receiver without literal SQL",
        ),
        ok(
            """
            import sqlite3

            def archive_first(conn: sqlite3.Connection, claims):
                for claim in claims:
                    if claim.closed:
                        conn.execute("INSERT INTO archive (id) VALUES (?)", (claim.id,))
                        return claim
            """,
            title="a query that a `return` or `break` always follows runs once",
        ),
        ok(
            """
            class BookTests:
                def test_pages(self):
                    for pages in (0, 1, 100):
                        with self.subTest(pages=pages):
                            Book.objects.create(title="t", pages=pages)
            """,
            title="test cases under `subTest`",
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute):
            return
        ancestors = ctx.ancestors()
        if ancestors and isinstance(ancestors[0], cst.Await):
            return  # awaited queries are AL201's
        loop = self._loop(ctx)
        if loop is None or leaves_loop_after(ctx.stack, loop):
            return  # `if row.id == wanted: cur.execute(...); break` runs once
        if runs_subtests(loop):
            return  # each iteration is a test case of its own
        method = func.attr.value
        if method == "execute":
            self._check_execute(node, func, loop, ctx)
        elif method in _ORM_TERMINALS or method in _DJANGO_QUERIES:
            self._check_orm(node, func, loop, ctx)

    # ---- context ---------------------------------------------------------------------------

    @staticmethod
    def _loop(ctx: FileContext) -> Optional[Loop]:
        if ctx.loops:
            inner = ctx.loops[-1]
            if isinstance(inner, cst.For) and inner.asynchronous is None:
                return inner
            if isinstance(inner, _COMPREHENSIONS):
                return inner
            return None
        fn = ctx.function
        if not isinstance(fn, cst.Lambda):
            return None
        # `map(lambda row: cur.execute(sql, row), rows)`
        stack = ctx.stack
        index = next((i for i in range(len(stack) - 1, -1, -1) if stack[i] is fn), -1)
        if index < 2:
            return None
        arg, call = stack[index - 1], stack[index - 2]
        if (
            isinstance(arg, cst.Arg)
            and isinstance(call, cst.Call)
            and call.args
            and call.args[0] is arg
            and isinstance(call.func, cst.Name)
            and call.func.value == "map"
            and ctx.binding_scope("map") is None
        ):
            return fn
        return None

    def _handle(self, expr: cst.BaseExpression, ctx: FileContext) -> Optional[DbHandle]:
        return db_handle(resolve_object(ctx, expr))

    # ---- execute ---------------------------------------------------------------------------

    def _check_execute(self, node: cst.Call, func: cst.Attribute, loop: Loop, ctx: FileContext) -> None:
        if has_star_args(node) or has_star_kwargs(node):
            return
        args = positionals(node)
        sql_arg = args[0] if args else next(filter(None, (keyword(node, k) for k in _SQL_KEYWORDS)), None)
        params_arg = (
            args[1]
            if len(args) > 1
            else next(filter(None, (keyword(node, k) for k in _PARAM_KEYWORDS)), None)
        )
        if sql_arg is None or params_arg is None:
            return
        if self._batched(loop, ctx):
            return
        varying = _varying(loop)
        sql = text_call_argument(sql_arg.value, ctx.qualname)
        if _names(sql) & varying or not _names(params_arg.value) & varying:
            return  # different statements per item, or the same query with the same parameters
        if _names(func.value) & varying:
            return  # a different connection per item
        handle = self._handle(func.value, ctx)
        verbs = self._verbs(sql, ctx)
        if handle is None and not (verbs and all(v in WRITE_VERBS | READ_VERBS for v in verbs)):
            return
        fix = None
        if handle is not None and isinstance(loop, cst.For) and verbs and all(v in _BATCHABLE for v in verbs):
            fix = self._fix(node, func, loop, handle, ctx)
        display = ctx.code(func)
        display = display if len(display) <= 40 else display[:37] + "..."
        ctx.report(node, f"`{display}` in a loop makes one database round trip per item", fix)

    @staticmethod
    def _batched(loop: Loop, ctx: FileContext) -> bool:
        """A loop over chunks, batches or pages already sends many rows per query."""
        if isinstance(loop, cst.Lambda):
            return False
        head = (
            (loop.target, loop.iter) if isinstance(loop, cst.For) else (loop.for_in.target, loop.for_in.iter)
        )
        text = " ".join(ctx.code(n) for n in head).lower()
        return any(word in text for word in _BATCH_WORDS)

    def _verbs(self, sql: cst.BaseExpression, ctx: FileContext) -> list[Optional[str]]:
        """The statement verbs of the SQL, following one simple binding of a name."""
        if isinstance(sql, cst.Name):
            value = ctx.value_of(sql)
            if value is None:
                return []
            sql = text_call_argument(value, ctx.qualname)
        text = sql_text(sql)
        return statement_verbs(text.text) if text is not None else []

    def _fix(
        self, node: cst.Call, func: cst.Attribute, loop: cst.For, handle: DbHandle, ctx: FileContext
    ) -> Optional[Patch]:
        driver = handle.driver
        if driver.batch is None or (
            handle.role == "connection"
            and not (driver.connection_executemany or driver.batch == "execute_batch")
        ):
            return None
        if driver.batch == "execute_batch" and handle.role != "cursor":
            return None
        if (
            loop.orelse is not None
            or not isinstance(loop.body, cst.IndentedBlock)
            or len(loop.body.body) != 1
        ):
            return None
        line = loop.body.body[0]
        if not (
            isinstance(line, cst.SimpleStatementLine)
            and len(line.body) == 1
            and isinstance(line.body[0], cst.Expr)
            and line.body[0].value is node
        ):
            return None
        args = node.args
        if len(args) != 2 or any(a.keyword is not None for a in args):
            return None
        params = args[1].value
        receiver_names = _names(func.value)
        if _names(params) & receiver_names:
            return None  # parameters that read the cursor (`cur.lastrowid`) need the loop
        if any(isinstance(n, (cst.Await, cst.Yield)) for n in iter_descendants(params)):
            return None
        if self._target_read_after(loop, ctx):
            return None
        rows = cst.ListComp(elt=params, for_in=cst.CompFor(target=loop.target, iter=loop.iter))
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        sql = args[0].value
        imports: list[ImportSpec] = []
        if driver.batch == "execute_batch":
            call = cst.Call(
                func=cst.parse_expression("psycopg2.extras.execute_batch"),
                args=[cst.Arg(func.value, comma=comma), cst.Arg(sql, comma=comma), cst.Arg(rows)],
            )
            imports.append(ImportSpec("psycopg2.extras"))
            title = "Use `psycopg2.extras.execute_batch` (psycopg2's `executemany` is a loop; rows are built first)"
        else:
            call = cst.Call(
                func=func.with_changes(attr=cst.Name("executemany")),
                args=[cst.Arg(sql, comma=comma), cst.Arg(rows)],
            )
            title = "Use one `executemany` call (rows are built first; errors surface for the batch)"
        statement = cst.SimpleStatementLine(
            body=[cst.Expr(call)],
            leading_lines=loop.leading_lines,
            trailing_whitespace=line.trailing_whitespace,
        )
        return Patch.unsafe({loop: statement}, title=title, imports=imports)

    @staticmethod
    def _target_read_after(loop: cst.For, ctx: FileContext) -> bool:
        """A loop variable read outside the loop keeps its last value; a comprehension's does not."""
        inside = {id(n) for n in iter_descendants(loop)}
        facts = ctx.facts()
        return any(id(read) not in inside for name in _names(loop.target) for read in facts.reads(name))

    # ---- ORM -------------------------------------------------------------------------------

    def _check_orm(self, node: cst.Call, func: cst.Attribute, loop: Loop, ctx: FileContext) -> None:
        parent = ctx.parent
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return  # not the end of the chain: the outermost call is reported
        varying = _varying(loop)
        method = func.attr.value
        chain: list[cst.Call] = [node]
        receiver: cst.BaseExpression = func.value
        while isinstance(receiver, cst.Call) and isinstance(receiver.func, cst.Attribute):
            chain.append(receiver)
            receiver = receiver.func.value
        if not any(_names(a.value) & varying for c in chain for a in c.args):
            return
        display = ctx.code(func)
        display = display if len(display) <= 40 else display[:37] + "..."
        message = f"`{display}` in a loop runs one query per item"
        # Django: `Model.objects.get(...)`, `Model.objects.filter(...).first()`
        if (
            isinstance(receiver, cst.Attribute)
            and receiver.attr.value == "objects"
            and isinstance(receiver.value, (cst.Name, cst.Attribute))
            and not _names(receiver.value) & varying
        ):
            first = chain[-1]
            first_method = cst.ensure_type(first.func, cst.Attribute).attr.value
            if method in _DJANGO_QUERIES and first_method in {
                "get",
                "filter",
                "exclude",
                "create",
                "get_or_create",
                "update_or_create",
            }:
                if len(chain) == 1 or method in {"first", "last", "exists", "count", "get"}:
                    ctx.report(node, message)
            return
        handle = self._handle(receiver, ctx)
        if handle is None or handle.driver.name != "sqlalchemy" or _names(receiver) & varying:
            return
        first_call = chain[-1]
        first_method = cst.ensure_type(first_call.func, cst.Attribute).attr.value
        if len(chain) == 1 and method == "get":
            ctx.report(node, message)  # session.get(Model, id)
        elif len(chain) > 1 and first_method == "query" and method in _ORM_TERMINALS:
            ctx.report(node, message)
