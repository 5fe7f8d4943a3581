"""Refresh a PostgreSQL materialized view under a transaction-scoped advisory lock.

Two refreshes of one view never pile up: the second skips (or, asked to, waits its turn).
`refresh_materialized_view` takes psycopg 3 and psycopg2 connections; `arefresh_materialized_view`
takes asyncpg and psycopg 3 async connections.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import time
from collections.abc import Sequence
from typing import Any, Union

from .metrics import metrics

__all__ = [
    "advisory_lock_key",
    "arefresh_materialized_view",
    "quote_view_name",
    "refresh_materialized_view",
]

ViewName = Union[str, Sequence[str]]

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_LOCK_NAMESPACE = b"auditlint.matview:"


def _parts(name: ViewName) -> list[str]:
    """Split `schema.view` as PostgreSQL reads it: unquoted parts fold to lower case."""
    if isinstance(name, str):
        parts: list[str] = []
        i = 0
        while True:
            if name.startswith('"', i):
                j = i + 1
                chunk = []
                while True:
                    end = name.find('"', j)
                    if end < 0:
                        raise ValueError(f"unterminated quoted identifier in {name!r}")
                    chunk.append(name[j:end])
                    if name.startswith('"', end + 1):
                        chunk.append('"')
                        j = end + 2
                        continue
                    i = end + 1
                    break
                parts.append("".join(chunk))
            else:
                end = name.find(".", i)
                word = name[i:] if end < 0 else name[i:end]
                if not _PLAIN.match(word):
                    raise ValueError(f"{word!r} in {name!r} is not a plain identifier; quote it")
                parts.append(word.lower())
                i = len(name) if end < 0 else end
            if i == len(name):
                break
            if name[i] != ".":
                raise ValueError(f"unexpected {name[i]!r} in {name!r}")
            i += 1
    else:
        parts = [str(part) for part in name]
    if not 1 <= len(parts) <= 2:
        raise ValueError(f"expected view or schema.view, got {name!r}")
    for part in parts:
        if not part or "\x00" in part:
            raise ValueError(f"bad identifier part {part!r} in {name!r}")
    return parts


def quote_view_name(name: ViewName) -> str:
    """`schema.view` quoted for SQL: `"schema"."view"`; a sequence of parts is taken literally."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in _parts(name))


def advisory_lock_key(name: ViewName) -> int:
    """The signed 64-bit advisory lock key for view `name`, stable across processes and runs.

    Spellings PostgreSQL treats as equal (`Patients`, `patients`, `"patients"`) share a key;
    `public.patients` and `patients` do not, as the search path is not consulted.
    """
    digest = hashlib.blake2b(_LOCK_NAMESPACE + quote_view_name(name).encode("utf-8"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def _statements(name: ViewName, concurrently: bool, wait: bool) -> tuple[str, str, str, int]:
    quoted = quote_view_name(name)
    lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    refresh = f"REFRESH MATERIALIZED VIEW {'CONCURRENTLY ' if concurrently else ''}{quoted}"
    return lock, refresh, ".".join(_parts(name)), advisory_lock_key(name)


def _record(view: str, refreshed: bool, lock_wait: float, refresh_time: float) -> None:
    labels = {"view": view}
    metrics.observe("matview.lock_wait_seconds", lock_wait, labels)
    if refreshed:
        metrics.inc("matview.refreshes", labels=labels)
        metrics.observe("matview.refresh_seconds", refresh_time, labels)
    else:
        metrics.inc("matview.skipped", labels=labels)


def refresh_materialized_view(
    conn: Any, name: ViewName, *, concurrently: bool = True, wait: bool = False
) -> bool:
    """Refresh view `name` if no other session is refreshing it; True when it refreshed.

    Runs in a transaction holding `pg_try_advisory_xact_lock(advisory_lock_key(name))`; if
    another session holds it, returns False at once, or with `wait=True` waits for it
    (`pg_advisory_xact_lock`) and then refreshes. `concurrently=True` keeps the view readable
    during the refresh and needs a unique index on it. The lock ends with the transaction:
    if `conn` is already inside one, the refresh joins it (psycopg 3: a savepoint) and both
    take effect when you commit; otherwise it commits before returning.

    Takes psycopg 3 (sync) and psycopg2 connections; use `arefresh_materialized_view` for
    asyncpg and psycopg async connections.
    """
    lock, refresh, view, key = _statements(name, concurrently, wait)
    if callable(getattr(conn, "fetchval", None)) or inspect.iscoroutinefunction(
        getattr(conn, "execute", None)
    ):
        raise TypeError("an async connection: use `await arefresh_materialized_view(conn, name)`")
    started = time.perf_counter()
    if callable(getattr(conn, "transaction", None)):
        with conn.transaction():
            row = conn.execute(f"SELECT {lock}(%s::bigint)", (key,)).fetchone()
            locked = time.perf_counter()
            got = wait or bool(row[0])
            if got:
                conn.execute(refresh)
    elif callable(getattr(conn, "cursor", None)) and hasattr(conn, "autocommit"):
        got, locked = _refresh_psycopg2(conn, lock, refresh, key, wait)
    else:
        raise TypeError(f"expected a psycopg or psycopg2 connection, not {type(conn).__name__}")
    _record(view, got, locked - started, time.perf_counter() - locked)
    return got


def _refresh_psycopg2(conn: Any, lock: str, refresh: str, key: int, wait: bool) -> tuple[bool, float]:
    # psycopg2 has no transaction() helper: open one unless the caller already has one open.
    own = conn.autocommit or conn.get_transaction_status() == 0
    with conn.cursor() as cur:
        if conn.autocommit:
            cur.execute("BEGIN")
        try:
            cur.execute(f"SELECT {lock}(%s::bigint)", (key,))
            row = cur.fetchone()
            locked = time.perf_counter()
            got = wait or bool(row[0])
            if got:
                cur.execute(refresh)
        except BaseException:
            if own:
                if conn.autocommit:
                    cur.execute("ROLLBACK")
                else:
                    conn.rollback()
            raise
        if own:
            if conn.autocommit:
                cur.execute("COMMIT")
            else:
                conn.commit()
    return got, locked


async def arefresh_materialized_view(
    conn: Any, name: ViewName, *, concurrently: bool = True, wait: bool = False
) -> bool:
    """`refresh_materialized_view` for asyncpg and psycopg 3 async connections."""
    lock, refresh, view, key = _statements(name, concurrently, wait)
    started = time.perf_counter()
    async with conn.transaction():
        if callable(getattr(conn, "fetchval", None)):
            value = await conn.fetchval(f"SELECT {lock}($1::bigint)", key)
            locked = time.perf_counter()
            got = wait or bool(value)
            if got:
                await conn.execute(refresh)
        else:
            cursor = await conn.execute(f"SELECT {lock}(%s::bigint)", (key,))
            row = await cursor.fetchone()
            locked = time.perf_counter()
            got = wait or bool(row[0])
            if got:
                await conn.execute(refresh)
    _record(view, got, locked - started, time.perf_counter() - locked)
    return got
