"""Never crash, never corrupt, never execute: hostile and broken input, crash isolation, fixes
that cannot corrupt files, code that is never run, and cache integrity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import libcst as cst
import pytest

from auditlint.api import fix_source
from auditlint.config import Settings
from auditlint.runner import RunOptions, run
from tests.conftest import ROOT

BAD = b'import requests\n\n\ndef f(url):\n    return requests.get(url)\n'
FIXED = BAD.replace(b"get(url)", b"get(url, timeout=10)")


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "auditlint", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout
    )


def no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ok.py").write_bytes(BAD)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("py2.py", b'print "hello"\nimport requests\n', "py2.py:1:1: syntax error"),
        ("latin.py", b"import requests\nrequests.get('\xff\xfe')\n", "latin.py: cannot decode"),
        ("binary.py", b"\x00\x01\x02\x03\xff\xfe binary", "binary.py: cannot decode"),
        ("deep.py", b"import requests\nx = " + b"-" * 5000 + b"1\n", "deep.py: cannot lint: the file is nested too deeply"),
        ("parens.py", b"import requests\nx = " + b"(" * 3000 + b"1" + b")" * 3000 + b"\n", "parens.py:"),
    ],
)
def test_broken_files_are_one_error_line_and_others_still_linted(
    project: Path, name: str, content: bytes, needle: str
) -> None:
    (project / name).write_bytes(content)
    res = cli("--no-cache", "--output-format", "concise", ".", cwd=project)
    no_traceback(res)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if name in line]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "ok.py:5:12: AL401" in res.stdout


def test_python2_file_reports_its_location(project: Path) -> None:
    (project / "old.py").write_bytes(b"import os\n\ndef f():\n    print 'x'\n")
    res = cli("--no-cache", "old.py", cwd=project)
    assert res.returncode == 2
    assert "old.py:4:5: syntax error" in res.stderr


@pytest.mark.parametrize(
    "raw",
    [
        b"# -*- coding: latin-1 -*-\nimport requests\nrequests.get('caf\xe9')\n",
        b"\xef\xbb\xbfimport requests\r\nrequests.get('u')\r\n",
        b"import requests\r\nx = 1\nrequests.get('u')\r\n",
        b"import requests\nif True:\n\trequests.get('u')\n\x0c\ndef f():\n\treturn requests.get('w')",
        b"import requests\rrequests.get('u')\r",
    ],
    ids=["latin-1", "bom-crlf", "mixed-endings", "tabs-formfeed-no-final-newline", "cr-only"],
)
def test_fix_through_cli_keeps_bytes_around_the_edit(tmp_path: Path, raw: bytes) -> None:
    (tmp_path / "m.py").write_bytes(raw)
    res = cli("--no-cache", "--fix", "--unsafe-fixes", "m.py", cwd=tmp_path)
    no_traceback(res)
    assert res.returncode == 0, res.stderr
    expected = (
        raw.replace(b"('u')", b"('u', timeout=10)")
        .replace(b"('w')", b"('w', timeout=10)")
        .replace(b"('caf\xe9')", b"('caf\xe9', timeout=10)")
    )
    assert (tmp_path / "m.py").read_bytes() == expected


def test_findings_point_at_the_right_lines_with_tabs_and_form_feeds(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_bytes(b"import requests\nif True:\n\trequests.get('u')\n\x0c\ndef f():\n\treturn requests.get('w')")
    res = cli("--no-cache", "--output-format", "json", "m.py", cwd=tmp_path)
    data = json.loads(res.stdout)
    assert [(d["line"], d["column"]) for d in data] == [(3, 2), (6, 9)]
    res = cli("--no-cache", "m.py", cwd=tmp_path)
    assert "\treturn requests.get('w')" in res.stdout


def test_empty_file_and_names_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_bytes(b"")
    (tmp_path / "with space é.py").write_bytes(BAD)
    res = cli("--no-cache", "--output-format", "json", ".", cwd=tmp_path)
    assert res.returncode == 1
    assert [d["path"] for d in json.loads(res.stdout)] == ["with space é.py"]
    assert cli("--no-cache", "--fix", "--unsafe-fixes", ".", cwd=tmp_path).returncode == 0
    assert (tmp_path / "with space é.py").read_bytes() == FIXED


def test_a_20_mb_file_is_reported_not_parsed(project: Path) -> None:
    line = b"x = requests.get('https://example.com/some/long/path', timeout=5)  # padding padding\n"
    (project / "generated.py").write_bytes(b"import requests\n" + line * (20 * 1024 * 1024 // len(line) + 1))
    res = cli("--no-cache", ".", cwd=project, timeout=60)
    no_traceback(res)
    assert res.returncode == 2
    assert "generated.py: not linted: 20.0 MB is over the 2 MB limit (max-file-size)" in res.stderr
    assert "ok.py:5:12" in res.stdout


def test_unreadable_and_vanishing_files(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "secret.py").write_bytes(BAD)
    (project / "gone.py").write_bytes(BAD)
    monkeypatch.chdir(project)
    import builtins

    real_open = builtins.open

    def guarded(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else ""
        if name.endswith("secret.py"):
            raise PermissionError(13, "Permission denied")
        if name.endswith("gone.py"):
            raise FileNotFoundError(2, "No such file or directory")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    result = run(["."], RunOptions(use_cache=False, jobs=1))
    messages = sorted(f"{e.path}: {e.message}" for e in result.errors)
    assert messages == ["gone.py: cannot read: No such file or directory", "secret.py: cannot read: Permission denied"]
    assert [f.path for f in result.findings] == ["ok.py"]


def test_symlinks_loops_and_outside_targets(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "theirs.py").write_bytes(BAD)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ok.py").write_bytes(BAD)
    os.symlink("loop_b", repo / "loop_a")
    os.symlink("loop_a", repo / "loop_b")
    os.symlink(outside, repo / "vendor")
    os.symlink(outside / "theirs.py", repo / "linked.py")
    res = cli("--no-cache", "--output-format", "concise", ".", cwd=repo, timeout=30)
    assert res.returncode == 1
    assert [line.split(":")[0] for line in res.stdout.splitlines()] == ["ok.py"]
    res = cli("--no-cache", "--fix", "--unsafe-fixes", ".", "linked.py", cwd=repo, timeout=30)
    assert res.returncode == 2
    assert "linked.py: is a symbolic link" in res.stderr
    assert (outside / "theirs.py").read_bytes() == BAD, "a fix never writes through a link"
    assert (repo / "ok.py").read_bytes() == FIXED


def test_a_crashing_rule_is_an_internal_error_and_the_rest_still_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditlint.registry import rule_class

    cls = rule_class("AL401")

    def boom(self, node, ctx):  # type: ignore[no-untyped-def]
        raise KeyError("boom")

    monkeypatch.setattr(cls, "visit_Call", boom)
    (tmp_path / "m.py").write_text('import requests\nrequests.get("u")\nSQL = "REFRESH MATERIALIZED VIEW v"\n')
    monkeypatch.chdir(tmp_path)
    result = run(["."], RunOptions(use_cache=False, jobs=1))
    assert [(e.code, e.path) for e in result.errors] == [("E001", "m.py")]
    assert "internal error in rule AL401" in result.errors[0].message
    assert [f.code for f in result.findings] == ["AL801"]
    from auditlint.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--no-cache", "-q", "."])
    assert exit_info.value.code == 2


def test_a_fix_that_breaks_the_code_is_dropped_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from auditlint.fixer import fix_bytes
    from auditlint.registry import rule_class

    cls = rule_class("AL401")
    monkeypatch.setattr(cls, "_number", lambda self: cst.Name("yield"))
    outcome = fix_bytes(BAD, "m.py", Settings(), ["AL401"], unsafe=True)
    assert outcome.new_source == BAD
    assert [e.code for e in outcome.errors] == ["E002"]
    assert "produced code that does not parse" in outcome.errors[0].message


def test_killing_the_fixer_leaves_every_file_old_or_new(tmp_path: Path) -> None:
    body = BAD * 40
    fixed = fix_source(body.decode(), "m.py", unsafe=True).encode()
    for i in range(150):
        (tmp_path / f"m{i:03}.py").write_bytes(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditlint", "--no-cache", "--fix", "--unsafe-fixes", "-j", "1", "."],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and all((tmp_path / f"m{i:03}.py").read_bytes() == body for i in range(150)):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    states = {(tmp_path / f"m{i:03}.py").read_bytes() for i in range(150)}
    assert states <= {body, fixed}
    assert fixed in states, "the run was killed after it started writing"
    # SIGKILL allows no clean-up: at most a hidden temporary file may remain, never a partial .py.
    leftovers = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".py")]
    assert all(n.startswith(".") and n.endswith(".auditlint-tmp") for n in leftovers), leftovers


def test_the_code_it_reads_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "EXECUTED"
    payload = f"open({str(marker)!r}, 'w').write('pwned')\nimport requests\nrequests.get('u')\n"
    pkg = tmp_path / "repo" / "pkg"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "conftest.py", "setup.py", "mod.py", "__main__.py"):
        (pkg / name).write_text(payload)
    (tmp_path / "repo" / "setup.py").write_text(payload)
    (tmp_path / "repo" / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\n[tool.auditlint]\nselect = ["ALL"]\n'
    )
    repo = tmp_path / "repo"
    assert cli("--no-cache", ".", cwd=repo).returncode == 1
    assert cli("--no-cache", "--fix", "--unsafe-fixes", "--fix-style", "runtime", ".", cwd=repo).returncode == 0
    assert not marker.exists()
    (repo / "pyproject.toml").write_text('[tool.auditlint]\nplugins = ["pkg.mod"]\n')
    res = cli("--no-cache", ".", cwd=repo)
    assert res.returncode == 2 and "tool.auditlint.plugins: unknown key" in res.stderr
    assert not marker.exists()


def test_concurrent_runs_never_corrupt_the_cache(project: Path) -> None:
    for i in range(30):
        (project / f"m{i}.py").write_bytes(BAD if i % 2 else b"x = 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "auditlint", "-q", "-j", "1", "."],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [1, 1, 1, 1]
    caches = list((project / ".auditlint_cache").glob("results-*.json"))
    assert len(caches) == 1
    data = json.loads(caches[0].read_text())
    assert len(data["files"]) == 31
    assert not list((project / ".auditlint_cache").glob(".tmp-*"))


def test_cache_key_covers_version_settings_and_content(monkeypatch: pytest.MonkeyPatch) -> None:
    import auditlint.config as config

    base = Settings().fingerprint()
    assert Settings(select=("AL4",)).fingerprint() != base
    assert Settings(rule_options=(("AL401", (("timeout", 3.0),)),)).fingerprint() != base
    assert Settings(fix_style="runtime").fingerprint() != base
    monkeypatch.setattr(config, "__version__", "999.0")
    assert Settings().fingerprint() != base
