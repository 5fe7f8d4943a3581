"""refresh_materialized_view: on PostgreSQL, two refreshes never pile up and reads never block."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from auditlint.runtime import arefresh_materialized_view, metrics, refresh_materialized_view
from auditlint.runtime.matview import advisory_lock_key, quote_view_name

SLOW = 0.8  # seconds a slowed refresh takes, long enough to act while it runs


class View:
    """A table, a delay knob and a materialized view over them with a unique index."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.table = f"{name}_t"
        self.knob = f"{name}_delay"
        self.name = f"{name}_v"
        self.psycopg = pytest.importorskip("psycopg")

    def connect(self, autocommit: bool = True) -> Any:
        return self.psycopg.connect(self.dsn, autocommit=autocommit)

    def create(self) -> None:
        with self.connect() as conn:
            conn.execute(f"CREATE TABLE {self.table} (id int PRIMARY KEY, val int NOT NULL)")
            conn.execute(f"INSERT INTO {self.table} SELECT g, g FROM generate_series(1, 100) g")
            conn.execute(f"CREATE TABLE {self.knob} (seconds float NOT NULL)")
            conn.execute(f"INSERT INTO {self.knob} VALUES (0)")
            conn.execute(
                f"CREATE MATERIALIZED VIEW {self.name} AS "
                f"WITH pause AS MATERIALIZED (SELECT pg_sleep((SELECT seconds FROM {self.knob}))) "
                f"SELECT t.id, t.val FROM {self.table} t, pause"
            )
            conn.execute(f"CREATE UNIQUE INDEX ON {self.name} (id)")

    def drop(self) -> None:
        with self.connect() as conn:
            conn.execute(f"DROP MATERIALIZED VIEW IF EXISTS {self.name}")
            conn.execute(f"DROP TABLE IF EXISTS {self.table}, {self.knob}")

    def slow_down(self, seconds: float) -> None:
        with self.connect() as conn:
            conn.execute(f"UPDATE {self.knob} SET seconds = %s", (seconds,))

    def bump(self) -> None:
        with self.connect() as conn:
            conn.execute(f"UPDATE {self.table} SET val = val + 1000")

    def total(self) -> int:
        with self.connect() as conn:
            return int(conn.execute(f"SELECT sum(val) FROM {self.name}").fetchone()[0])

    def refresh_in_progress(self) -> bool:
        key = advisory_lock_key(self.name)
        with self.connect() as conn:
            # A bigint advisory key shows in pg_locks as its high and low 32 bits.
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            ).fetchone()
            return bool(row[0])


@pytest.fixture
def view(pg_dsn: str, unique: str) -> Iterator[View]:
    made = View(pg_dsn, unique)
    made.create()
    yield made
    made.drop()


def _hold_lock(view: View) -> Any:
    holder = view.connect(autocommit=False)
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key(view.name),))
    return holder


def test_psycopg_skips_while_another_session_holds_the_lock_and_waits_when_asked(
    view: View, fresh_metrics: None
) -> None:
    holder = _hold_lock(view)
    try:
        with view.connect() as conn:
            started = time.monotonic()
            assert refresh_materialized_view(conn, view.name) is False
            assert time.monotonic() - started < 2

            outcome: list[bool] = []
            waiter = threading.Thread(
                target=lambda: outcome.append(refresh_materialized_view(conn, view.name, wait=True))
            )
            waiter.start()
            waiter.join(0.5)
            assert waiter.is_alive() and not outcome  # queued behind the holder
            holder.commit()
            waiter.join(10)
            assert outcome == [True]
    finally:
        holder.close()
    labels = {"view": view.name}
    assert metrics.counter("matview.skipped", labels) == 1
    assert metrics.counter("matview.refreshes", labels) == 1


def test_two_concurrent_refreshes_one_refreshes_one_skips_and_reads_do_not_block(view: View) -> None:
    view.bump()
    view.slow_down(SLOW)
    outcome: list[bool] = []

    def refresh() -> None:
        with view.connect() as conn:
            outcome.append(refresh_materialized_view(conn, view.name))

    first = threading.Thread(target=refresh)
    first.start()
    deadline = time.monotonic() + 5
    while not view.refresh_in_progress() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert view.refresh_in_progress()

    with view.connect() as second:
        assert refresh_materialized_view(second, view.name) is False
    with view.connect() as reader:
        reader.execute("SET lock_timeout = '200ms'")
        started = time.monotonic()
        assert reader.execute(f"SELECT count(*) FROM {view.name}").fetchone() == (100,)
        assert time.monotonic() - started < SLOW / 2
    first.join(10)
    assert outcome == [True]
    view.slow_down(0)
    assert view.total() == sum(range(1, 101)) + 100 * 1000


def test_without_concurrently_reads_would_block(view: View) -> None:
    view.slow_down(SLOW)

    def refresh() -> None:
        with view.connect() as conn:
            refresh_materialized_view(conn, view.name, concurrently=False)

    refresher = threading.Thread(target=refresh)
    refresher.start()
    deadline = time.monotonic() + 5
    while not view.refresh_in_progress() and time.monotonic() < deadline:
        time.sleep(0.01)
    with view.connect() as reader:
        reader.execute("SET lock_timeout = '200ms'")
        with pytest.raises(view.psycopg.errors.LockNotAvailable):
            reader.execute(f"SELECT count(*) FROM {view.name}")
    refresher.join(10)


def test_psycopg_inside_an_open_transaction_joins_it(view: View) -> None:
    with view.connect(autocommit=False) as conn:
        conn.execute("SELECT 1")
        assert refresh_materialized_view(conn, view.name) is True
        assert view.refresh_in_progress()  # the lock lasts until the caller's commit
        conn.commit()
    assert not view.refresh_in_progress()


def test_psycopg2_connections(view: View) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    holder = _hold_lock(view)
    try:
        for autocommit in (True, False):
            conn = psycopg2.connect(view.dsn)
            conn.autocommit = autocommit
            try:
                assert refresh_materialized_view(conn, view.name) is False
                assert conn.get_transaction_status() == 0  # nothing left open
            finally:
                conn.close()
    finally:
        holder.close()
    view.bump()
    conn = psycopg2.connect(view.dsn)
    try:
        assert refresh_materialized_view(conn, view.name) is True
        assert conn.get_transaction_status() == 0
    finally:
        conn.close()
    assert view.total() == sum(range(1, 101)) + 100 * 1000


def test_asyncpg_one_refreshes_the_other_skips_and_wait_waits(view: View) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    view.bump()

    async def main() -> None:
        first, second, holder = [await asyncpg.connect(view.dsn) for _ in range(3)]
        try:
            view.slow_down(SLOW)
            results = await asyncio.gather(
                arefresh_materialized_view(first, view.name),
                arefresh_materialized_view(second, view.name),
            )
            assert sorted(results) == [False, True]

            view.slow_down(0)
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("SELECT pg_advisory_xact_lock($1)", advisory_lock_key(view.name))
            assert await arefresh_materialized_view(first, view.name) is False
            waiting = asyncio.ensure_future(arefresh_materialized_view(first, view.name, wait=True))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await transaction.commit()
            assert await asyncio.wait_for(waiting, 10) is True
        finally:
            for conn in (first, second, holder):
                await conn.close()

    asyncio.run(main())
    assert view.total() == sum(range(1, 101)) + 100 * 1000


def test_psycopg_async_connection(view: View) -> None:
    async def main() -> None:
        conn = await view.psycopg.AsyncConnection.connect(view.dsn, autocommit=True)
        try:
            assert await arefresh_materialized_view(conn, view.name) is True
            with pytest.raises(TypeError, match="arefresh_materialized_view"):
                refresh_materialized_view(conn, view.name)
        finally:
            await conn.close()

    asyncio.run(main())


def test_quoted_schema_qualified_names(pg_dsn: str, unique: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    schema = f'{unique} "Odd" Schema'
    name = (schema, "Mixed View")
    quoted = quote_view_name(name)
    assert quoted == '"' + schema.replace('"', '""') + '"."Mixed View"'
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema.replace(chr(34), chr(34) * 2)}"')
        try:
            conn.execute(f"CREATE MATERIALIZED VIEW {quoted} AS SELECT 1 AS id")
            conn.execute(f"CREATE UNIQUE INDEX ON {quoted} (id)")
            assert refresh_materialized_view(conn, name) is True
            assert refresh_materialized_view(conn, quoted) is True
        finally:
            conn.execute(f"DROP SCHEMA {quoted.split('.')[0]} CASCADE")


def test_names_parse_like_postgresql_and_keys_are_stable() -> None:
    assert quote_view_name("Public.Patients") == '"public"."patients"'
    assert quote_view_name('"Public"."Pat""s"') == '"Public"."Pat""s"'
    assert advisory_lock_key("Patients") == advisory_lock_key('"patients"') == advisory_lock_key(["patients"])
    assert advisory_lock_key("patients") != advisory_lock_key("public.patients")
    assert advisory_lock_key("patient_search_cache") == 1561076040368301104  # same in every process
    for bad in ("v; DROP TABLE t", "a.b.c", '"open', "", "a..b", "1abc"):
        with pytest.raises(ValueError):
            quote_view_name(bad)
