"""Fixtures for the runtime tests: real PostgreSQL and Redis on loopback, unique names."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from auditlint.runtime import metrics

PG_DSN = os.environ.get("AUDITLINT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AUDITLINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

_reachable: dict[tuple[str, int], bool] = {}


def _can_connect(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    if address not in _reachable:
        try:
            with socket.create_connection(address, timeout=1.0):
                _reachable[address] = True
        except OSError:
            _reachable[address] = False
    return _reachable[address]


@pytest.fixture
def pg_dsn() -> str:
    if not _can_connect(PG_DSN, 5432):
        pytest.skip(
            f"PostgreSQL is not reachable at {PG_DSN}: start one with trust auth and a `test` "
            f"database (e.g. `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust "
            f"-e POSTGRES_DB=test postgres:16`) or point AUDITLINT_TEST_PG_DSN at one"
        )
    return PG_DSN


@pytest.fixture
def redis_url() -> str:
    if not _can_connect(REDIS_URL, 6379):
        pytest.skip(
            f"Redis is not reachable at {REDIS_URL}: start one (e.g. `redis-server --daemonize "
            f"yes` or `docker run -d -p 6379:6379 redis:7`) or point AUDITLINT_TEST_REDIS_URL at one"
        )
    return REDIS_URL


@pytest.fixture
def unique() -> str:
    """A name no other test (or earlier run) uses, valid as an SQL identifier and a key prefix."""
    return "al_" + uuid.uuid4().hex[:12]


@pytest.fixture
def fresh_metrics() -> Iterator[None]:
    metrics.reset()
    yield
    metrics.reset()
