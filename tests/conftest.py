"""Shared test helpers: settings for examples, and the addresses of the loopback services."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The OASIS SARIF 2.1.0 schema (oasis-tcs/sarif-spec, sarif-2.1/schema/sarif-schema-2.1.0.json,
#: commit e058381), kept with the tests so that they run from any checkout.
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"
sys.path.insert(0, str(ROOT))


@pytest.fixture
def root() -> Path:
    return ROOT


def pg_dsn() -> str:
    return os.environ.get("AUDITLINT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def redis_url() -> str:
    return os.environ.get("AUDITLINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
