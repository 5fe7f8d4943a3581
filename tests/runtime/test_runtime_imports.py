"""`import auditlint.runtime` pulls in the standard library only, and exports the fixes' names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import auditlint.runtime

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
before = set(sys.modules)
import auditlint.runtime
print(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sys.stdlib_module_names is 3.10+")
def test_import_loads_no_third_party_module() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    output = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(output)
    assert "auditlint.runtime" in loaded
    tops = {name.split(".")[0] for name in loaded}
    assert "libcst" not in tops and "click" not in tops
    assert sorted(tops - set(sys.stdlib_module_names) - {"auditlint"}) == []


def test_public_names() -> None:
    expected = {
        "Registry", "track", "PeriodicJob", "AsyncPeriodicJob", "JobScheduler", "gather_bounded",
        "map_bounded", "pooled", "with_default_timeout", "lazy", "resolve", "reset", "json_clone",
        "SerializedPayload", "BulkInvalidation", "invalidate_many", "refresh_materialized_view",
        "arefresh_materialized_view", "metrics",
    }  # fmt: skip
    assert expected <= set(auditlint.runtime.__all__)
    for name in auditlint.runtime.__all__:
        assert getattr(auditlint.runtime, name) is not None
