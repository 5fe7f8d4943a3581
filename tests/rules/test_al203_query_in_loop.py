"""AL203: the executemany fix writes the same rows as the loop it replaces (sqlite3), for
generated rows; and the fix is offered only where it is right."""

from __future__ import annotations

import inspect
import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import assert_fix_proven, fix, lint

INSERT_LOOP = (
    inspect.cleandoc(
        """
    import sqlite3

    def save(conn: sqlite3.Connection, rows):
        for claim_id, name in rows:
            conn.execute("INSERT INTO claims (id, name) VALUES (?, ?)", (claim_id, name))
    """
    )
    + "\n"
)

UPDATE_LOOP = (
    inspect.cleandoc(
        """
    import sqlite3

    def save(conn: sqlite3.Connection, rows):
        cur = conn.cursor()
        for claim_id, name in rows:
            cur.execute("UPDATE claims SET name = ? || name WHERE id = ?", (name, claim_id % 5))
    """
    )
    + "\n"
)


def _run(source: str, rows: list[tuple[int, str]]) -> list[tuple[Any, ...]]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "example.py", "exec"), namespace)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE claims (id INTEGER, name TEXT)")
    conn.executemany("INSERT INTO claims VALUES (?, ?)", [(i, "") for i in range(5)])
    namespace["save"](conn, rows)
    return conn.execute("SELECT rowid, id, name FROM claims ORDER BY rowid").fetchall()


@pytest.fixture(scope="module", params=[INSERT_LOOP, UPDATE_LOOP], ids=["insert", "update"])
def fixed_pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    source: str = request.param
    findings = lint(source, "AL203")
    assert len(findings) == 1 and findings[0].fix is not None
    assert findings[0].fix.applicability.value == "unsafe"
    fixed = fix(source, "AL203")
    assert "executemany" in fixed and "for claim_id, name in rows:" not in fixed
    assert_fix_proven(source, fixed, "AL203")
    return source, fixed


rows_strategy = st.lists(st.tuples(st.integers(-1000, 1000), st.text(max_size=8)), max_size=30)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy)
def test_same_rows_before_and_after(fixed_pair: tuple[str, str], rows: list[tuple[int, str]]) -> None:
    before, after = fixed_pair
    assert _run(before, rows) == _run(after, rows)


def test_rows_from_a_generator_are_consumed_once() -> None:
    source, fixed = INSERT_LOOP, fix(INSERT_LOOP, "AL203")
    rows = [(1, "a"), (2, "b")]
    assert _run(source, iter(rows)) == _run(fixed, iter(rows))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source",
    [
        # SELECT: report only.
        """
        import sqlite3
        def f(conn: sqlite3.Connection, ids):
            for i in ids:
                conn.execute("SELECT * FROM claims WHERE id = ?", (i,))
        """,
        # Two statements in the body.
        """
        import sqlite3
        def f(conn: sqlite3.Connection, ids):
            for i in ids:
                conn.execute("DELETE FROM claims WHERE id = ?", (i,))
                print(i)
        """,
        # Parameters read the cursor.
        """
        import sqlite3
        def f(conn: sqlite3.Connection, ids):
            cur = conn.cursor()
            for i in ids:
                cur.execute("INSERT INTO log (prev, id) VALUES (?, ?)", (cur.lastrowid, i))
        """,
        # Unknown driver.
        """
        def f(db, ids):
            for i in ids:
                db.execute("DELETE FROM claims WHERE id = %s", (i,))
        """,
        # psycopg 3 connections have no executemany.
        """
        import psycopg
        def f(ids):
            conn = psycopg.connect("dbname=x")
            for i in ids:
                conn.execute("DELETE FROM claims WHERE id = %s", (i,))
        """,
    ],
)
def test_reported_without_fix(source: str) -> None:
    findings = lint(inspect.cleandoc(source) + "\n", "AL203")
    assert len(findings) == 1 and findings[0].fix is None


@pytest.mark.parametrize(
    "source",
    [
        """
        import sqlite3
        async def f(conn: sqlite3.Connection, ids):
            async for i in ids:
                conn.execute("DELETE FROM claims WHERE id = ?", (i,))
        """,
        """
        import sqlite3
        def f(conn: sqlite3.Connection, ids):
            for i in ids:
                def later():
                    conn.execute("DELETE FROM claims WHERE id = ?", (i,))
        """,
        """
        import sqlite3
        def f(conns, ids):
            for conn in conns:
                conn.execute("DELETE FROM claims WHERE id = ?", (ids,))
        """,
    ],
    ids=["async-for", "nested-def", "connection-per-item"],
)
def test_silent(source: str) -> None:
    assert lint(inspect.cleandoc(source) + "\n", "AL203") == []
