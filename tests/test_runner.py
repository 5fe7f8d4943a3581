"""The runner: parallel runs give the same answer as serial ones, fixes are written atomically
with permissions kept, a file changed on disk is not overwritten."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from auditlint.runner import RunOptions, run, write_atomic

BAD = "import requests\n\n\ndef f(url):\n    return requests.get(url)\n"


def _tree(tmp_path: Path, n: int) -> Path:
    for i in range(n):
        sub = tmp_path / f"pkg{i % 3}"
        sub.mkdir(exist_ok=True)
        (sub / f"m{i}.py").write_text(BAD if i % 2 else "x = 1\n")
    return tmp_path


def test_parallel_equals_serial(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = _tree(tmp_path, 40)
    monkeypatch.chdir(root)
    serial = run(["."], RunOptions(use_cache=False, jobs=1))
    parallel = run(["."], RunOptions(use_cache=False, jobs=2))
    assert serial.findings == parallel.findings
    assert len(serial.findings) == 20
    assert [f.path for f in serial.findings] == sorted(f.path for f in serial.findings)


def test_fix_keeps_permissions(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "tool.py"
    target.write_text(BAD)
    os.chmod(target, 0o750)
    monkeypatch.chdir(tmp_path)
    result = run(["tool.py"], RunOptions(fix=True, unsafe_fixes=True, use_cache=False, jobs=1))
    assert result.fixes_applied == 1 and not result.errors
    assert "timeout=10" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert [p.name for p in tmp_path.iterdir()] == ["tool.py"], "no temporary file left behind"


def test_file_changed_on_disk_is_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "m.py"
    target.write_text("new content\n")
    problem = write_atomic(target, b"fixed\n", expected_old=b"old content\n")
    assert problem is not None and "changed on disk" in problem
    assert target.read_text() == "new content\n"
