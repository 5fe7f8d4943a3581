"""AL701's fixes against a real Redis on loopback: a bulk update through the original code
leaves stale keys; through the fixed code (both styles) it leaves none, also when the bulk
write fails half way."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlint.api import fix_source, lint_source
from auditlint.config import Settings
from tests.conftest import redis_url

redis = pytest.importorskip("redis")

SERVICE = textwrap.dedent(
    """
    class Database:
        def __init__(self, fail_at=None):
            self.rows = {}
            self.writes = 0
            self.fail_at = fail_at

        def update(self, patient):
            if self.writes == self.fail_at:
                raise RuntimeError("database went away")
            self.writes += 1
            self.rows[patient.id] = patient.name


    class PatientService:
        def __init__(self, db, cache, prefix):
            self.db = db
            self.cache = cache
            self.prefix = prefix

        def get(self, pid):
            hit = self.cache.get(f"{self.prefix}:{pid}")
            if hit is not None:
                return hit.decode()
            value = self.db.rows[pid]
            self.cache.set(f"{self.prefix}:{pid}", value)
            return value

        def update_patient(self, patient):
            self.db.update(patient)
            self.cache.delete(f"{self.prefix}:{patient.id}")

        def bulk_update(self, patients):
            for p in patients:
                self.db.update(p)
    """
)


class Patient:
    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name


@pytest.fixture(scope="module")
def cache() -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url(), socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(
            f"no Redis at {redis_url()} ({exc}); start one with `redis-server --port 6379 --daemonize yes` "
            "or set AUDITLINT_TEST_REDIS_URL"
        )
    yield client
    client.close()


def _load(source: str, tmp_path: Path) -> Any:
    name = f"al701_service_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _fixed(style: str) -> str:
    return fix_source(SERVICE, "service.py", Settings(fix_style=style), select=["AL701"], unsafe=True)


def _stale(module: Any, cache: Any, rows: dict[str, tuple[str, str]], fail_at: Any = None) -> list[str]:
    """Warm the cache, bulk-update every row, and return the ids whose cached value is stale."""
    prefix = f"al701-test:{uuid.uuid4().hex}"
    db = module.Database()
    service = module.PatientService(db, cache, prefix)
    for pid, (old, _new) in rows.items():
        db.update(Patient(pid, old))
        assert service.get(pid) == old  # cached now
    db.fail_at = None if fail_at is None else db.writes + fail_at
    try:
        service.bulk_update([Patient(pid, new) for pid, (_old, new) in rows.items()])
    except RuntimeError:
        assert fail_at is not None
    try:
        return [pid for pid in rows if service.get(pid) != db.rows[pid]]
    finally:
        keys = list(cache.scan_iter(f"{prefix}:*"))
        if keys:
            cache.delete(*keys)


_ROWS = st.dictionaries(
    st.text("abcdefgh0123456789", min_size=1, max_size=6),
    st.tuples(
        st.text("ABCDEFGH", min_size=1, max_size=5), st.text("abcdefgh", min_size=1, max_size=5)
    ).filter(lambda t: t[0] != t[1]),
    min_size=1,
    max_size=12,
)


def test_the_original_reports_and_leaves_stale_keys(cache: Any, tmp_path: Path) -> None:
    findings = lint_source(SERVICE, "service.py", Settings(), select=["AL701"])
    assert [(f.code, f.fix is not None) for f in findings] == [("AL701", True)]
    rows = {"p1": ("Ann", "Anna"), "p2": ("Bob", "Bobby")}
    assert _stale(_load(SERVICE, tmp_path), cache, rows) == ["p1", "p2"]


@pytest.mark.parametrize("style", ["stdlib", "runtime"])
def test_fixed_code_is_clean(style: str) -> None:
    fixed = _fixed(style)
    assert fixed != SERVICE
    assert lint_source(fixed, "service.py", Settings(fix_style=style), select=["AL701"]) == []
    if style == "runtime":
        assert "BulkInvalidation(self.cache)" in fixed
    else:
        assert 'self.cache.delete(f"{self.prefix}:{p.id}")' in fixed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_ROWS, style=st.sampled_from(["stdlib", "runtime"]))
def test_bulk_update_through_the_fixed_code_leaves_no_stale_key(
    cache: Any, tmp_path: Path, rows: dict[str, tuple[str, str]], style: str
) -> None:
    assert _stale(_load(_fixed(style), tmp_path), cache, rows) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=_ROWS, style=st.sampled_from(["stdlib", "runtime"]), data=st.data())
def test_a_bulk_update_failing_half_way_leaves_no_stale_key(
    cache: Any, tmp_path: Path, rows: dict[str, tuple[str, str]], style: str, data: st.DataObject
) -> None:
    fail_at = data.draw(st.integers(0, len(rows) - 1))
    assert _stale(_load(_fixed(style), tmp_path), cache, rows, fail_at=fail_at) == []
