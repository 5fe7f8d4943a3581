"""Adopting auditlint in an existing repository: baselines, the changed-lines gate, unused and
added `noqa` comments, the Python API and the progress bar. CLI behaviour through a real
subprocess, the changed-lines gate against a real git repository."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from auditlint import Finding, fix_source, lint_paths, lint_source
from auditlint.baseline import normalise
from auditlint.config import Settings
from tests.test_cli import run

BAD = 'import requests\n\n\ndef fetch(url):\n    return requests.get(url)\n'
TWO_FUNCS = (
    "import requests\n\n\n"
    "def fetch(url):\n    return requests.get(url)\n\n\n"
    "def post(url):\n    return requests.post(url)\n"
)


def _json(out: str) -> list[dict[str, object]]:
    return list(json.loads(out))


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "api.py").write_text(TWO_FUNCS)
    return tmp_path


# --- baseline ------------------------------------------------------------------------------------


def test_baseline_absorbs_todays_findings(legacy: Path) -> None:
    written = run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    assert written.returncode == 0, written.stderr
    doc = json.loads((legacy / "baseline.json").read_text())
    assert doc["format"] == 1
    assert sorted(e["scope"] for e in doc["findings"]) == ["fetch", "post"]
    assert all(e["count"] == 1 and e["code"] == "AL401" for e in doc["findings"])

    again = run("--baseline", "baseline.json", "--no-cache", "--output-format", "json", ".", cwd=legacy)
    assert again.returncode == 0, again.stderr
    assert _json(again.stdout) == []
    assert "2 finding(s) recorded in baseline.json not shown" in again.stderr


def test_baseline_survives_edits_that_shift_lines(legacy: Path) -> None:
    run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    shifted = (
        '"""A docstring that moves everything down."""\n\n# and a comment\n'
        + TWO_FUNCS.replace("return requests.get(url)", "return requests.get(  url )  # spacing and a comment")
    )
    (legacy / "api.py").write_text(shifted)
    out = run("--baseline", "baseline.json", "--no-cache", "--output-format", "json", ".", cwd=legacy)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _json(out.stdout) == []


def test_baseline_counts_a_duplicated_finding_as_new(legacy: Path) -> None:
    run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    duplicated = TWO_FUNCS.replace("    return requests.get(url)\n", "    requests.get(url)\n    return requests.get(url)\n")
    (legacy / "api.py").write_text(duplicated)
    out = run("--baseline", "baseline.json", "--no-cache", "--output-format", "json", ".", cwd=legacy)
    assert out.returncode == 1
    found = _json(out.stdout)
    assert len(found) == 1 and found[0]["code"] == "AL401"


def test_the_same_problem_in_another_function_is_new(legacy: Path) -> None:
    run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    (legacy / "api.py").write_text(TWO_FUNCS + "\n\ndef other(url):\n    return requests.get(url)\n")
    out = run("--baseline", "baseline.json", "--no-cache", "--output-format", "json", ".", cwd=legacy)
    assert out.returncode == 1
    assert [f["line"] for f in _json(out.stdout)] == [13]


def test_fixed_findings_are_listed_and_strict_baseline_fails(legacy: Path) -> None:
    run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    (legacy / "api.py").write_text(TWO_FUNCS.replace("requests.post(url)", "requests.post(url, timeout=3)"))
    lenient = run("--baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    assert lenient.returncode == 0
    assert "1 finding(s) recorded in the baseline no longer occur" in lenient.stderr
    assert "AL401 in `post`" in lenient.stderr
    strict = run("--baseline", "baseline.json", "--strict-baseline", "--no-cache", ".", cwd=legacy)
    assert strict.returncode == 1
    assert "error: 1 finding(s)" in strict.stderr
    # Shrinking the baseline settles it.
    assert run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy).returncode == 0
    assert run("--baseline", "baseline.json", "--strict-baseline", "--no-cache", ".", cwd=legacy).returncode == 0


def test_baseline_from_config_and_bad_baselines(legacy: Path) -> None:
    run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=legacy)
    (legacy / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.auditlint]\nbaseline = 'baseline.json'\n")
    assert run("--no-cache", ".", cwd=legacy).returncode == 0
    missing = run("--baseline", "nope.json", ".", cwd=legacy)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "auditlint: error: nope.json: baseline file not found (create it with `--write-baseline nope.json`)"
    ]
    (legacy / "broken.json").write_text("{not json")
    broken = run("--baseline", "broken.json", ".", cwd=legacy)
    assert broken.returncode == 2
    assert "broken.json: invalid baseline" in broken.stderr and "Traceback" not in broken.stderr
    assert run("--strict-baseline", "--no-cache", str(legacy / "api.py"), cwd=legacy.parent).returncode == 2


def test_normalise_ignores_layout_and_comments() -> None:
    assert normalise("requests.get(\n    url,  # why\n)") == normalise("requests.get(url,)")
    assert normalise("requests.get(url)") != normalise("requests.post(url)")


# --- changed lines -------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo(legacy: Path) -> Path:
    _git(legacy, "init", "-q", "-b", "main")
    _git(legacy, "add", ".")
    _git(legacy, "commit", "-qm", "legacy")
    return legacy


def test_diff_base_reports_only_changed_lines(repo: Path) -> None:
    text = TWO_FUNCS.replace("def post(url):\n", "def post(url):\n    requests.delete(url)\n")
    (repo / "api.py").write_text("# header\n" + text)
    (repo / "new.py").write_text(BAD)
    out = run("--diff-base", "main", "--no-cache", "--output-format", "json", ".", cwd=repo)
    assert out.returncode == 1
    found = sorted((f["path"], f["line"]) for f in _json(out.stdout))
    # The shifted old findings (api.py 6 and 11) stay quiet; the new call and the new file report.
    assert found == [("api.py", 10), ("new.py", 5)]
    full = run("--no-cache", "--output-format", "json", ".", cwd=repo)
    assert len(_json(full.stdout)) == 4


def test_diff_base_a_finding_spanning_lines_counts_when_any_line_changed(repo: Path) -> None:
    (repo / "api.py").write_text(TWO_FUNCS.replace("requests.post(url)", "requests.post(\n        url,\n    )"))
    _git(repo, "commit", "-qam", "multi-line call")
    (repo / "api.py").write_text(TWO_FUNCS.replace("requests.post(url)", "requests.post(\n        url + '/v2',\n    )"))
    out = run("--diff-base", "HEAD", "--no-cache", "--output-format", "json", ".", cwd=repo)
    assert [(f["line"], f["end_line"]) for f in _json(out.stdout)] == [(9, 11)]


def test_diff_base_committed_changes_and_staged_ones(repo: Path) -> None:
    _git(repo, "checkout", "-q", "-b", "feature")
    (repo / "api.py").write_text(TWO_FUNCS + "\n\ndef put(url):\n    return requests.put(url)\n")
    _git(repo, "commit", "-qam", "put")
    out = run("--diff-base", "main", "--no-cache", "--output-format", "json", ".", cwd=repo)
    assert [f["line"] for f in _json(out.stdout)] == [13]
    assert run("--diff-base", "HEAD", "--no-cache", ".", cwd=repo).returncode == 0


def test_diff_base_errors_are_one_line(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    unknown = run("--diff-base", "no-such-branch", ".", cwd=repo)
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "auditlint: error: --diff-base: unknown revision `no-such-branch` (fetch it, or name a branch, tag or commit)"
    ]
    outside = tmp_path_factory.mktemp("not-a-repo")
    (outside / "x.py").write_text(BAD)
    not_git = run("--diff-base", "main", ".", cwd=outside)
    assert not_git.returncode == 2 and "needs a git repository" in not_git.stderr


def test_diff_base_in_a_shallow_clone(repo: Path, tmp_path: Path) -> None:
    (repo / "api.py").write_text(TWO_FUNCS + "\n")
    _git(repo, "commit", "-qam", "second")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", "--depth=1", repo.as_uri(), str(clone))
    old = _git(repo, "rev-parse", "HEAD~1").strip()
    shallow = run("--diff-base", old, ".", cwd=clone)
    assert shallow.returncode == 2
    assert "is not in this shallow clone" in shallow.stderr and "fetch-depth: 0" in shallow.stderr


def test_diff_base_with_baseline(repo: Path) -> None:
    run("--write-baseline", "baseline.json", "--no-cache", ".", cwd=repo)
    (repo / "api.py").write_text(TWO_FUNCS + "\n\ndef put(url):\n    return requests.put(url)\n")
    out = run("--diff-base", "main", "--baseline", "baseline.json", "--no-cache", "--output-format", "json", ".", cwd=repo)
    assert [f["line"] for f in _json(out.stdout)] == [13]


# --- noqa ----------------------------------------------------------------------------------------


def test_add_noqa_then_clean(legacy: Path) -> None:
    out = run("--add-noqa", "--no-cache", ".", cwd=legacy)
    assert out.returncode == 0, out.stderr
    assert "Added 2 noqa directive(s) to 1 file(s)." in out.stderr
    text = (legacy / "api.py").read_text()
    assert text.count("# noqa: AL401") == 2
    assert run("--no-cache", ".", cwd=legacy).returncode == 0
    # A second run has nothing to add.
    assert "Added 0" in run("--add-noqa", "--no-cache", ".", cwd=legacy).stderr
    assert (legacy / "api.py").read_text() == text


def test_add_noqa_merges_with_an_existing_directive(legacy: Path) -> None:
    src = (
        "import asyncio\nimport requests\n\n\nasync def f(work, url):\n"
        "    asyncio.create_task(work(requests.get(url)))  # noqa: AL999\n"
    )
    (legacy / "api.py").write_text(src)
    run("--add-noqa", "--no-cache", ".", cwd=legacy)
    line = (legacy / "api.py").read_text().splitlines()[5]
    code, _, directive = line.partition("  # noqa: ")
    assert code == "    asyncio.create_task(work(requests.get(url)))"
    # The existing codes stay first, the new ones follow.
    assert directive == "AL999, AL101, AL401"


def test_unused_noqa_is_reported_and_removed(legacy: Path) -> None:
    src = "import requests\n\nx = 1  # noqa: AL401\ny = requests.get('u')  # noqa: AL401, AL101\n"
    (legacy / "api.py").write_text(src)
    assert run("--no-cache", ".", cwd=legacy).returncode == 0
    out = run("--report-unused-noqa", "--no-cache", "--output-format", "json", ".", cwd=legacy)
    assert out.returncode == 1
    assert sorted((f["code"], f["line"]) for f in _json(out.stdout)) == [("AL001", 3), ("AL001", 4)]
    fixed = run("--report-unused-noqa", "--fix", "--no-cache", ".", cwd=legacy)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert (legacy / "api.py").read_text() == "import requests\n\nx = 1\ny = requests.get('u')  # noqa: AL401\n"


def test_conflicting_options_exit_2(legacy: Path) -> None:
    out = run("--add-noqa", "--fix", ".", cwd=legacy)
    assert out.returncode == 2 and out.stderr.count("\n") == 1


# --- Python API ----------------------------------------------------------------------------------


def test_lint_source_returns_findings_with_fixes() -> None:
    [finding] = lint_source(BAD, path="svc/api.py")
    assert isinstance(finding, Finding)
    assert (finding.code, finding.name, finding.path, finding.line, finding.column) == ("AL401", "http-without-timeout", "svc/api.py", 5, 12)
    assert finding.fix is not None and finding.fix.applicability.value == "unsafe"
    assert lint_source(BAD, select=["AL1"]) == []
    with pytest.raises(SyntaxError):
        lint_source("def f(:\n")


def test_fix_source_respects_applicability_and_settings() -> None:
    assert fix_source(BAD) == BAD  # the timeout fix is unsafe
    fixed = fix_source(BAD, unsafe=True)
    assert "requests.get(url, timeout=10)" in fixed
    slow = Settings(rule_options=(("AL401", (("timeout", 30),)),))
    assert "timeout=30" in fix_source(BAD, settings=slow, unsafe=True)
    assert lint_source(fixed) == []


def test_lint_paths_uses_discovery_and_config(legacy: Path) -> None:
    (legacy / "build").mkdir()
    (legacy / "build" / "gen.py").write_text(BAD)
    found = lint_paths([legacy])
    assert {Path(f.path).name for f in found} == {"api.py"}
    assert len(found) == 2
    assert lint_paths([legacy], select=["AL1"]) == []


# --- progress ------------------------------------------------------------------------------------


def _many(tmp_path: Path, n: int) -> Path:
    for i in range(n):
        (tmp_path / f"m{i:03}.py").write_text(BAD if i == 0 else "x = 1\n")
    return tmp_path


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    root = _many(tmp_path, 60)
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    # stderr is a pseudo-terminal: the bar is drawn there (and erased), stdout keeps the report.
    master, slave = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "auditlint", "--no-cache", "--jobs", "1", "."],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    tty_err = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 1
    assert "auditlint" in tty_err and "60/60" in tty_err
    assert b"AL401" in done.stdout and b"60/60" not in done.stdout

    piped = run("--no-cache", "--jobs", "1", ".", cwd=root)
    assert "60/60" not in piped.stderr
    quiet_tty = run("--no-cache", "--quiet", ".", cwd=root)
    assert "60/60" not in quiet_tty.stderr


def test_unused_noqa_has_its_documentation(tmp_path: Path) -> None:
    out = run("rule", "AL001", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.startswith("AL001 unused-noqa") and "--report-unused-noqa" in out.stdout
