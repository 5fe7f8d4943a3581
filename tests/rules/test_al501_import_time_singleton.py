"""AL501's fixes run: a module imported before and after the fix (both styles) builds its
singleton at import before, and after the fix on first use, once under racing threads, and
again in a child after `os.fork()`."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlint.api import fix_source, lint_source
from auditlint.config import Settings
from tests.conftest import ROOT

SERVICE = textwrap.dedent(
    """
    import os
    import time

    BUILT = []


    class ResourceClient:
        def __init__(self, name, *, retries=3):
            # A slow constructor widens the window in which racing threads could build twice.
            time.sleep(0.05)
            BUILT.append(os.getpid())
            self.pid = os.getpid()
            self.token = id(self)
            self.args = (name, retries)


    client = ResourceClient("claims", retries=5)
    """
)

DRIVER = textwrap.dedent(
    """
    import importlib, json, os, sys, threading

    sys.path.insert(0, sys.argv[1])
    mod = importlib.import_module("service")
    out = {"after_import": len(mod.BUILT)}
    barrier = threading.Barrier(8)
    tokens = []

    def use():
        barrier.wait()
        tokens.append(mod.client.token)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["after_threads"] = len(mod.BUILT)
    out["distinct_objects"] = len(set(tokens))
    out["args"] = list(mod.client.args)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        seen = {"pid": mod.client.pid, "me": os.getpid(), "built": len(mod.BUILT)}
        os.write(write, json.dumps(seen).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        out["child"] = json.loads(f.read())
    out["parent_pid_after_fork"] = mod.client.pid == os.getpid()
    print(json.dumps(out))
    """
)


def _fixed(source: str, style: str) -> str:
    return fix_source(source, "service.py", Settings(fix_style=style), select=["AL501"], unsafe=True)


def _run(tmp_path: Path, source: str) -> dict[str, Any]:
    (tmp_path / "service.py").write_text(source, encoding="utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(driver), str(tmp_path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_original_builds_at_import(tmp_path: Path) -> None:
    assert [f.code for f in lint_source(SERVICE, "service.py", Settings(), select=["AL501"])] == ["AL501"]
    out = _run(tmp_path, SERVICE)
    assert out["after_import"] == 1
    # The child inherits the parent's object, sockets and all: it builds nothing of its own.
    assert out["child"]["pid"] != out["child"]["me"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
@pytest.mark.parametrize("style", ["stdlib", "runtime"])
def test_fixed_builds_on_first_use_once_and_again_after_fork(tmp_path: Path, style: str) -> None:
    fixed = _fixed(SERVICE, style)
    assert fixed != SERVICE
    assert lint_source(fixed, "service.py", Settings(fix_style=style), select=["AL501"]) == []
    out = _run(tmp_path, fixed)
    assert out["after_import"] == 0, "built at import"
    assert out["after_threads"] == 1, "built more than once under threads"
    assert out["distinct_objects"] == 1
    assert out["args"] == ["claims", 5]
    assert out["child"]["pid"] == out["child"]["me"], "the child used the parent's object"
    assert out["child"]["built"] == 2
    assert out["parent_pid_after_fork"]


def _import_fresh(path: Path) -> Any:
    name = f"al501_prop_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


_ARG = st.one_of(
    st.integers(-(10**6), 10**6),
    st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=8),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    args=st.lists(_ARG, max_size=3),
    kwargs=st.dictionaries(st.sampled_from(["host", "port", "db", "label"]), _ARG, max_size=3),
    style=st.sampled_from(["stdlib", "runtime"]),
)
def test_fixed_object_gets_the_same_arguments(
    tmp_path: Path, args: list[Any], kwargs: dict[str, Any], style: str
) -> None:
    call = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    source = textwrap.dedent(
        f"""
        BUILT = []


        class RecorderClient:
            def __init__(self, *args, **kwargs):
                BUILT.append((args, kwargs))


        cache = RecorderClient({call})
        """
    )
    fixed = _fixed(source, style)
    path = tmp_path / f"m_{uuid.uuid4().hex}.py"
    path.write_text(fixed, encoding="utf-8")
    module = _import_fresh(path)
    assert module.BUILT == []
    assert bool(module.cache)  # first use builds it (through the proxy in runtime style)
    assert module.BUILT == [(tuple(args), kwargs)]
