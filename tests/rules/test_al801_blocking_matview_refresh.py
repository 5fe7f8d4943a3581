"""AL801 over generated spellings of the statement: case, whitespace and comments vary; the
rule fires exactly when a refresh lacks CONCURRENTLY (and is not WITH NO DATA), and the fixed
SQL is judged concurrent and runs on PostgreSQL."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlint.analysis.sql import matview_refreshes
from tests.conftest import pg_dsn
from tests.helpers import assert_fix_proven, fix, lint


def _cased(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flags: "".join(c.upper() if f else c.lower() for c, f in zip(word, flags))
    )


separator = st.lists(
    st.sampled_from([" ", "  ", "\t", "\n", " /* note */ ", " -- note\n", "\n    "]), min_size=1, max_size=3
).map("".join)
# The prefilter looks for `materialized` in lower, upper or capitalised case.
materialized = st.sampled_from(["MATERIALIZED", "materialized", "Materialized"])


@st.composite
def refresh_sql(draw: st.DrawFn, any_case: bool = False) -> tuple[str, bool]:
    """(SQL, expected to be reported)."""
    concurrently = draw(st.booleans())
    no_data = draw(st.booleans()) and not concurrently
    words = [
        draw(_cased("REFRESH")),
        draw(_cased("MATERIALIZED") if any_case else materialized),
        draw(_cased("VIEW")),
    ]
    if concurrently:
        words.append(draw(_cased("CONCURRENTLY")))
    words.append(draw(st.sampled_from(["patient_search", "reports.daily", '"Daily Totals"'])))
    if no_data:
        words += [draw(_cased("WITH")), draw(_cased("NO")), draw(_cased("DATA"))]
    sql = draw(separator).lstrip("\n") if draw(st.booleans()) else ""
    for word in words:
        sql += word + draw(separator)
    sql = sql.rstrip() + draw(st.sampled_from(["", ";", ";\n"]))
    if draw(st.booleans()):
        sql = "SELECT 1;\n" + sql
    return sql, not concurrently and not no_data


@settings(max_examples=200, deadline=None)
@given(case=refresh_sql(any_case=True))
def test_sql_analysis_judges_each_spelling(case: tuple[str, bool]) -> None:
    sql, blocking = case
    found = matview_refreshes(sql)
    assert len(found) == 1
    refresh = found[0]
    assert (refresh.concurrently is False and not refresh.with_no_data) == blocking


@settings(max_examples=120, deadline=None)
@given(case=refresh_sql())
def test_rule_and_fix_over_spellings(case: tuple[str, bool]) -> None:
    sql, blocking = case
    source = f"def job(cur):\n    cur.execute({sql!r})\n"
    findings = lint(source, "AL801")
    assert len(findings) == (1 if blocking else 0)
    if not blocking:
        return
    fixed = fix(source, "AL801")
    assert_fix_proven(source, fixed, "AL801")
    assert lint(fixed, "AL801") == []
    new_sql = fixed.split("cur.execute(", 1)[1].rsplit(")", 1)[0]
    refreshed = matview_refreshes(eval(new_sql))  # noqa: S307 - a string literal we generated
    assert [r.concurrently for r in refreshed] == [True]


@pytest.fixture(scope="module")
def pg_cursor():  # type: ignore[no-untyped-def]
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(pg_dsn(), connect_timeout=3, autocommit=True)
    except Exception:  # noqa: BLE001 - unreachable server: skip with instructions
        pytest.skip(
            f"PostgreSQL is not reachable at {pg_dsn()}: start one with "
            "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:15`"
        )
    with conn:
        conn.execute("DROP MATERIALIZED VIEW IF EXISTS al801_totals")
        conn.execute("CREATE MATERIALIZED VIEW al801_totals AS SELECT 1 AS id, 2 AS total")
        conn.execute("CREATE UNIQUE INDEX ON al801_totals (id)")
        yield conn.cursor()
        conn.execute("DROP MATERIALIZED VIEW IF EXISTS al801_totals")


@pytest.mark.parametrize(
    "sql",
    [
        "REFRESH MATERIALIZED VIEW al801_totals",
        "refresh /* nightly */ materialized\n view al801_totals;",
        "SELECT 1; REFRESH MATERIALIZED VIEW al801_totals WITH DATA",
    ],
)
def test_fixed_sql_runs_on_postgresql(pg_cursor, sql: str) -> None:  # type: ignore[no-untyped-def]
    source = f"def job(cur):\n    cur.execute({sql!r})\n"
    fixed = fix(source, "AL801")
    namespace: dict[str, object] = {}
    exec(compile(fixed, "example.py", "exec"), namespace)
    namespace["job"](pg_cursor)  # type: ignore[operator]
    assert "CONCURRENTLY" in fixed.upper()
