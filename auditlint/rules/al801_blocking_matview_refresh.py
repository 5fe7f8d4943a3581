"""AL801 blocking-matview-refresh: `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` in SQL strings."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from auditlint.analysis.pools import db_handle, resolve_object
from auditlint.analysis.sql import HOLE, MatviewRefresh, SqlText, matview_refreshes, sql_text
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Patch, Rule, bad, ok

_STRING_NODES = (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")
_TITLE = "Insert `CONCURRENTLY` (needs a unique index on the view, and a populated view)"


class BlockingMatviewRefresh(Rule):
    """
    ## What it does
    Finds SQL strings with a `REFRESH MATERIALIZED VIEW` statement that lacks `CONCURRENTLY`:
    plain strings, implicitly concatenated pieces (judged as one string), f-strings, and the
    strings passed to `text(...)`, `cursor.execute(...)` or Alembic's `op.execute(...)`.
    Keywords are matched case-insensitively, across any whitespace and SQL comments, and
    each statement of a multi-statement string is judged on its own.

    Not reported: `... WITH NO DATA` (PostgreSQL does not allow `CONCURRENTLY` there),
    `CREATE MATERIALIZED VIEW`, the words inside SQL comments or quoted SQL literals,
    docstrings and other bare string statements, prose that is not a statement (words after
    the view name other than `WITH [NO] DATA`), and a string whose interpolation right after
    `VIEW` may itself supply `CONCURRENTLY` (`f"... VIEW {mode} {name}"`). The prefilter needs
    the word `materialized` in lower, upper or capitalised case somewhere in the file.

    ## Why is this bad?
    A plain refresh takes an `ACCESS EXCLUSIVE` lock: every query that reads the view waits
    until the refresh ends, which on a large view means seconds to minutes of blocked
    requests. `CONCURRENTLY` builds the new contents aside and swaps them in, so readers keep
    reading.

    ## Example
    ```python
    def refresh_search(cur):
        cur.execute("REFRESH MATERIALIZED VIEW patient_search_cache")
    ```

    ## Use instead
    ```python
    def refresh_search(cur):
        cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY patient_search_cache")
    ```

    ## Fix safety
    The fix inserts `CONCURRENTLY` after `VIEW`, in the case of the surrounding keywords. It is
    **unsafe**: PostgreSQL accepts a concurrent refresh only when the view has a unique index
    covering all rows and is already populated, and the refresh itself takes longer.

    In runtime style, `conn.execute("REFRESH MATERIALIZED VIEW name")` (awaited or not) with a
    literal view name becomes `refresh_materialized_view(conn, "name")`, which refreshes
    concurrently under an advisory lock; other strings get the stdlib fix.

    ## Options
    None.
    """

    code = "AL801"
    name = "blocking-matview-refresh"
    summary = "Materialized view refreshed without CONCURRENTLY"
    triggers = ("materialized", "MATERIALIZED", "Materialized")
    fix_safety = "unsafe"
    examples = (
        bad(
            """
            def refresh_search(cur):
                cur.execute("REFRESH MATERIALIZED VIEW patient_search_cache")
            """,
            fixed="""
            def refresh_search(cur):
                cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY patient_search_cache")
            """,
        ),
        bad(
            """
            from alembic import op

            def upgrade():
                op.execute("refresh materialized view reports.daily_totals;")
            """,
            fixed="""
            from alembic import op

            def upgrade():
                op.execute("refresh materialized view concurrently reports.daily_totals;")
            """,
            title="op.execute, lower case",
        ),
        bad(
            """
            import sqlalchemy as sa

            def refresh(conn):
                conn.execute(sa.text("REFRESH MATERIALIZED "
                                     "VIEW claims_by_payer"))
            """,
            fixed="""
            import sqlalchemy as sa

            def refresh(conn):
                conn.execute(sa.text("REFRESH MATERIALIZED "
                                     "VIEW CONCURRENTLY claims_by_payer"))
            """,
            title="text(...) with implicitly concatenated pieces",
        ),
        bad(
            """
            def refresh(cur, view):
                cur.execute(f"REFRESH MATERIALIZED VIEW {view}")
            """,
            fixed="""
            def refresh(cur, view):
                cur.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")
            """,
        ),
        bad(
            """
            NIGHTLY = '''
                REFRESH /* the big one */ MATERIALIZED
                    VIEW claims_by_payer;  -- slow
                REFRESH MATERIALIZED VIEW CONCURRENTLY payer_totals;
                refresh materialized view denials
            '''
            """,
            fixed="""
            NIGHTLY = '''
                REFRESH /* the big one */ MATERIALIZED
                    VIEW CONCURRENTLY claims_by_payer;  -- slow
                REFRESH MATERIALIZED VIEW CONCURRENTLY payer_totals;
                refresh materialized view concurrently denials
            '''
            """,
            title="each statement judged on its own, comments and whitespace tolerated",
        ),
        bad(
            """
            def refresh(cur, name):
                cur.execute("REFRESH MATERIALIZED VIEW " + name)
            """,
            fixed="""
            def refresh(cur, name):
                cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY " + name)
            """,
        ),
        bad(
            """
            import psycopg

            def refresh():
                with psycopg.connect("dbname=claims") as conn:
                    conn.execute("REFRESH MATERIALIZED VIEW patient_search_cache")
            """,
            fixed="""
            import psycopg
            from auditlint.runtime import refresh_materialized_view

            def refresh():
                with psycopg.connect("dbname=claims") as conn:
                    refresh_materialized_view(conn, "patient_search_cache")
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import asyncpg

            async def refresh(pool: asyncpg.Pool):
                async with pool.acquire() as conn:
                    await conn.execute("REFRESH MATERIALIZED VIEW patient_search_cache")
            """,
            fixed="""
            import asyncpg
            from auditlint.runtime import arefresh_materialized_view

            async def refresh(pool: asyncpg.Pool):
                async with pool.acquire() as conn:
                    await arefresh_materialized_view(conn, "patient_search_cache")
            """,
            fix_style="runtime",
        ),
        bad(
            """
            def refresh(cur):
                cur.execute("REFRESH MATERIALIZED VIEW patient_search_cache")
            """,
            fixed="""
            def refresh(cur):
                cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY patient_search_cache")
            """,
            fix_style="runtime",
            title="runtime style on a cursor: the helper takes connections, so the stdlib fix",
        ),
        ok(
            """
            def refresh(cur):
                cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY patient_search_cache")
                cur.execute("refresh materialized view\\n  concurrently reports.daily")
            """
        ),
        ok(
            """
            from alembic import op

            def upgrade():
                op.execute("CREATE MATERIALIZED VIEW payer_totals AS SELECT payer, sum(total) FROM claims GROUP BY payer WITH NO DATA")
                op.execute("REFRESH MATERIALIZED VIEW payer_totals WITH NO DATA")
            """,
            title="CREATE MATERIALIZED VIEW and WITH NO DATA",
        ),
        ok(
            '''
            def refresh(cur):
                """Runs REFRESH MATERIALIZED VIEW patient_search_cache every night."""
                # REFRESH MATERIALIZED VIEW patient_search_cache blocks readers, hence:
                cur.execute("-- REFRESH MATERIALIZED VIEW patient_search_cache\\nSELECT 1")
                cur.execute("SELECT 'REFRESH MATERIALIZED VIEW x' AS hint")
                log("about to REFRESH MATERIALIZED VIEW patient_search_cache")
                log("REFRESH MATERIALIZED VIEW took too long, retrying")
            ''',
            title="docstrings, comments, SQL comments and literals, prose",
        ),
        ok(
            """
            def refresh(cur, name, concurrently):
                mode = "CONCURRENTLY" if concurrently else ""
                cur.execute(f"REFRESH MATERIALIZED VIEW {mode} {name}")
                cur.execute(f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY' if concurrently else ''} x")
            """,
            title="an interpolation that may be CONCURRENTLY",
        ),
    )

    def visit_SimpleString(self, node: cst.SimpleString, ctx: FileContext) -> None:
        self._check(node, ctx)

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString, ctx: FileContext) -> None:
        self._check(node, ctx)

    def visit_FormattedString(self, node: cst.FormattedString, ctx: FileContext) -> None:
        self._check(node, ctx)

    def _check(self, node: cst.BaseExpression, ctx: FileContext) -> None:
        parent = ctx.parent
        if isinstance(parent, cst.ConcatenatedString):
            return  # judged as part of the whole
        if isinstance(parent, cst.Expr):
            return  # a docstring or another string statement is never executed
        text = sql_text(node)
        if text is None or "materialized" not in text.text.lower():
            return
        blocking = [r for r in matview_refreshes(text.text) if self._blocking(r, text, ctx)]
        if not blocking:
            return
        views = ", ".join(f"`{r.view}`" for r in blocking if r.view)
        message = "`REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` blocks reads" + (
            f" of {views}" if views else ""
        )
        ctx.report(node, message, self._fix(node, text, blocking, ctx))

    def _blocking(self, refresh: MatviewRefresh, text: SqlText, ctx: FileContext) -> bool:
        if refresh.with_no_data or refresh.concurrently is True:
            return False
        if refresh.concurrently is False:
            rest = text.text[refresh.keyword_end :].lstrip()
            hole = text.hole_at(len(text.text) - len(rest)) if rest.startswith(HOLE) else None
            return hole is None or not _may_be_keyword(hole)
        # Nothing follows `VIEW` in the literal: `"REFRESH MATERIALIZED VIEW " + name`.
        if text.text[refresh.keyword_end :].strip():
            return False
        parent = ctx.parent
        return (
            isinstance(parent, cst.BinaryOperation)
            and isinstance(parent.operator, cst.Add)
            and parent.left is text.node
            and isinstance(parent.right, (cst.Name, cst.Attribute, cst.Subscript, cst.Call))
        )

    def _fix(
        self, node: cst.BaseExpression, text: SqlText, blocking: list[MatviewRefresh], ctx: FileContext
    ) -> Optional[Patch]:
        if ctx.fix_style == "runtime":
            runtime = self._runtime_fix(node, text, blocking, ctx)
            if runtime is not None:
                return runtime
        edits = [(r.keyword_end - 1, " CONCURRENTLY" if r.upper else " concurrently") for r in blocking]
        changes = text.insert_after(edits)
        return Patch.unsafe(changes, title=_TITLE) if changes else None

    def _runtime_fix(
        self, node: cst.BaseExpression, text: SqlText, blocking: list[MatviewRefresh], ctx: FileContext
    ) -> Optional[Patch]:
        """`conn.execute("REFRESH MATERIALIZED VIEW name")` -> `refresh_materialized_view(conn, "name")`."""
        if len(blocking) != 1 or text.holes:
            return None
        refresh = blocking[0]
        if refresh.view is None or not _PLAIN_NAME.fullmatch(refresh.view):
            return None
        if len(matview_refreshes(text.text)) != 1 or text.text[refresh.statement.end :].strip(" \t\r\n;"):
            return None
        if (
            text.text[: refresh.statement.start].strip()
            or refresh.statement.masked.strip().split()[-1] != refresh.view
        ):
            return None
        ancestors = ctx.ancestors()
        if (
            len(ancestors) < 2
            or not isinstance(ancestors[0], cst.Arg)
            or not isinstance(ancestors[1], cst.Call)
        ):
            return None
        call = ancestors[1]
        if (
            len(call.args) != 1
            or ancestors[0].keyword is not None
            or not isinstance(call.func, cst.Attribute)
        ):
            return None
        if call.func.attr.value != "execute":
            return None
        receiver = call.func.value
        if not isinstance(receiver, (cst.Name, cst.Attribute)):
            return None
        awaited = len(ancestors) > 2 and isinstance(ancestors[2], cst.Await)
        statement = (
            ancestors[3]
            if awaited and len(ancestors) > 3
            else ancestors[2]
            if not awaited and len(ancestors) > 2
            else None
        )
        if not isinstance(statement, cst.Expr):
            return None  # the result of `execute` is used: the helper returns something else
        handle = db_handle(resolve_object(ctx, receiver))
        # The helpers take connections only: psycopg 3 (sync), asyncpg (awaited).
        if handle is None or handle.role != "connection":
            return None
        if (handle.driver.name, awaited) not in (("psycopg", False), ("asyncpg", True)):
            return None
        helper = "arefresh_materialized_view" if awaited else "refresh_materialized_view"
        replacement = cst.Call(
            func=cst.Name(helper),
            args=[
                cst.Arg(receiver, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                cst.Arg(cst.SimpleString(f'"{refresh.view}"')),
            ],
        )
        return Patch.unsafe(
            {call: replacement},
            title=f"Use `{helper}` (refreshes concurrently under an advisory lock, skips when another "
            "refresh runs; needs a unique index)",
            imports=[ImportSpec("auditlint.runtime", helper)],
        )


def _may_be_keyword(hole: cst.BaseExpression) -> bool:
    """An interpolation right after `VIEW` that may be `CONCURRENTLY` itself, not a view name."""
    return not isinstance(hole, (cst.Name, cst.Attribute, cst.Subscript, cst.Call))
