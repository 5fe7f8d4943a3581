"""`check --shard K/N` and `merge`, through a real subprocess: the shards partition the files, and
merging their JSON or SARIF reports gives what one run over all the files gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditlint.files import shard_of
from tests.conftest import ROOT, SARIF_SCHEMA

BAD = "import requests\n\n\ndef f(url):\n    return requests.get(url)\n"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "auditlint", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for i in range(12):
        sub = tmp_path / ("pkg" if i % 2 else "lib") / f"m{i}.py"
        sub.parent.mkdir(exist_ok=True)
        sub.write_text(BAD + ("\n\ndef g(u):\n    return requests.post(u)\n" if i % 3 == 0 else ""))
    return tmp_path


def paths_of(out: str) -> list[str]:
    return [f["path"] for f in json.loads(out)]


def test_shard_of_is_stable_and_in_range() -> None:
    # The key is the repository-relative path only: fixed values keep every machine in step.
    assert [shard_of(f"pkg/m{i}.py", 3) for i in range(6)] == [shard_of(f"pkg/m{i}.py", 3) for i in range(6)]
    assert {shard_of(f"x/{i}.py", 4) for i in range(200)} == {1, 2, 3, 4}
    assert shard_of("a.py", 1) == 1


def test_shards_partition_the_files_and_merge_to_the_whole_run(repo: Path) -> None:
    whole = run("check", "--no-cache", "--output-format", "json", ".", cwd=repo)
    assert whole.returncode == 1, whole.stderr
    outputs = []
    seen: list[str] = []
    for k in (1, 2, 3):
        out = repo / f"shard-{k}.json"
        res = run("check", "--no-cache", "--shard", f"{k}/3", "--output-format", "json", "-o", str(out), ".", cwd=repo)
        assert res.returncode in (0, 1), res.stderr
        files = set(paths_of(out.read_text()))
        assert not files & set(seen), "a file is linted by one shard only"
        seen.extend(files)
        outputs.append(str(out))
    assert sorted(seen) == sorted(set(paths_of(whole.stdout)))
    merged = run("merge", *outputs, cwd=repo)
    assert merged.returncode == 1, merged.stderr
    assert json.loads(merged.stdout) == json.loads(whole.stdout)


def test_the_same_file_lands_in_the_same_shard_from_another_directory(repo: Path) -> None:
    """The key is relative to the repository root, not to the working directory."""
    top = run("check", "--no-cache", "--shard", "2/3", "--output-format", "json", ".", cwd=repo)
    inside = run("check", "--no-cache", "--shard", "2/3", "--output-format", "json", ".", cwd=repo / "pkg")
    from_top = {p for p in paths_of(top.stdout) if p.startswith("pkg/")}
    assert from_top == {f"pkg/{p}" for p in paths_of(inside.stdout)}


def test_merge_sarif(repo: Path) -> None:
    whole = run("check", "--no-cache", "--output-format", "sarif", ".", cwd=repo)
    parts = []
    for k in (1, 2):
        out = repo / f"s{k}.sarif"
        run("check", "--no-cache", "--shard", f"{k}/2", "--output-format", "sarif", "-o", str(out), ".", cwd=repo)
        parts.append(str(out))
    merged = run("merge", "-o", "all.sarif", *parts, cwd=repo)
    assert merged.returncode == 1, merged.stderr
    doc = json.loads((repo / "all.sarif").read_text())
    expected = json.loads(whole.stdout)
    assert len(doc["runs"]) == 1
    assert doc["runs"][0]["results"] == expected["runs"][0]["results"]
    assert doc["runs"][0]["tool"] == expected["runs"][0]["tool"]
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_merge_sarif_validates_against_the_schema(repo: Path) -> None:
    import jsonschema

    parts = []
    for k in (1, 2):
        out = repo / f"s{k}.sarif"
        run("check", "--no-cache", "--shard", f"{k}/2", "--output-format", "sarif", "-o", str(out), ".", cwd=repo)
        parts.append(str(out))
    merged = run("merge", *parts, cwd=repo)
    jsonschema.validate(json.loads(merged.stdout), json.loads(SARIF_SCHEMA.read_text()))


def test_merge_keeps_a_failed_shard_failed(repo: Path) -> None:
    (repo / "lib" / "broken.py").write_text("def f(:\n")
    parts = []
    for k in (1, 2):
        out = repo / f"s{k}.sarif"
        run("check", "--no-cache", "--shard", f"{k}/2", "--output-format", "sarif", "-o", str(out), ".", cwd=repo)
        parts.append(str(out))
    doc = json.loads(run("merge", *parts, cwd=repo).stdout)
    invocation = doc["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert any("syntax error" in n["message"]["text"] for n in invocation["toolExecutionNotifications"])


def test_merge_empty_reports_exit_0(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("[]\n")
    (tmp_path / "b.json").write_text("[]\n")
    res = run("merge", "a.json", "b.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.json": "[]", "b.sarif": '{"version": "2.1.0", "runs": []}'}, "mix JSON and SARIF"),
        ({"a.json": "not json"}, "a.json: not JSON"),
        ({"a.json": '{"x": 1}'}, "not an auditlint JSON or SARIF report"),
        ({}, "missing.json: cannot read"),
    ],
)
def test_merge_bad_inputs_exit_2_one_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    res = run("merge", *(files or ["missing.json"]), cwd=tmp_path)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auditlint: error:") and message in lines[0], res.stderr


def test_merge_refuses_reports_of_two_versions(repo: Path) -> None:
    out = repo / "a.sarif"
    run("check", "--no-cache", "--output-format", "sarif", "-o", str(out), ".", cwd=repo)
    other = json.loads(out.read_text())
    other["runs"][0]["tool"]["driver"]["version"] = "0.0.0-other"
    (repo / "b.sarif").write_text(json.dumps(other))
    res = run("merge", "a.sarif", "b.sarif", cwd=repo)
    assert res.returncode == 2 and "one version" in res.stderr


@pytest.mark.parametrize("value", ["0/3", "4/3", "2", "a/b", "1/0", "-1/2"])
def test_bad_shard_exit_2(repo: Path, value: str) -> None:
    res = run("check", "--no-cache", "--shard", value, ".", cwd=repo)
    assert res.returncode == 2
    assert "--shard" in res.stderr and "Traceback" not in res.stderr


def test_shard_refuses_stdin(repo: Path) -> None:
    res = run("check", "--shard", "1/2", "-", cwd=repo)
    assert res.returncode == 2 and "standard input" in res.stderr
