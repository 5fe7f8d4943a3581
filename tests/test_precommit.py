"""The pre-commit hooks, run by the real `pre-commit` against a temporary git repository: a commit
with a finding is blocked, the fix hook rewrites the file and the second attempt passes.

pre-commit installs the hooks from a git repository holding this project (its files as they are
now, committed in a temporary copy), into an environment of its own, like a user's machine does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = shutil.which("pre-commit", path=os.path.dirname(sys.executable)) or shutil.which("pre-commit")

pytestmark = pytest.mark.skipif(PRE_COMMIT is None, reason="needs pre-commit: pip install -e '.[test]'")

DANGLING = "import asyncio\n\n\nasync def main(work):\n    asyncio.create_task(work())\n"


def _git(cwd: Path, *args: str, home: Optional[Path] = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Read by the hook script that `pre-commit install` writes.
        **({"PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"} if home is not None else {}),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository with this project's files, committed: what `repo:` points at."""
    repo = tmp_path_factory.mktemp("hooks-repo")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        names = [n for n in listed.stdout.decode().split("\0") if n]
    else:  # not a git checkout (an unpacked source tree): take what packaging needs
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    for name in names:
        if name.startswith(("fixtures/", "benchmarks/", "tests/")) or not (ROOT / name).is_file():
            continue
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    assert (repo / ".pre-commit-hooks.yaml").is_file()
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    assert _git(repo, "commit", "-qm", "hooks").returncode == 0
    rev = _git(repo, "rev-parse", "HEAD").stdout.strip()
    return repo, rev


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def _user_repo(tmp_path: Path, hooks: tuple[Path, str], hook_id: str, args: str = "") -> Path:
    repo = tmp_path / "user"
    repo.mkdir()
    _git(repo, "init", "-q")
    line = f"        args: [{args}]\n" if args else ""
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hooks[0].as_uri()}\n    rev: {hooks[1]}\n    hooks:\n      - id: {hook_id}\n{line}"
    )
    _git(repo, "add", ".pre-commit-config.yaml")
    assert _git(repo, "commit", "-qm", "config").returncode == 0
    return repo


def _pre_commit(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert PRE_COMMIT is not None
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([PRE_COMMIT, *args], cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=600)


def _commit(repo: Path, home: Path, message: str) -> subprocess.CompletedProcess[str]:
    return _git(repo, "commit", "-m", message, home=home)


def test_check_hook_blocks_a_commit_with_a_finding(tmp_path: Path, hooks_repo: tuple[Path, str], pre_commit_home: Path) -> None:
    repo = _user_repo(tmp_path, hooks_repo, "auditlint")
    assert _pre_commit(repo, pre_commit_home, "install").returncode == 0
    (repo / "jobs.py").write_text(DANGLING)
    (repo / "notes.txt").write_text("not python\n")
    _git(repo, "add", "jobs.py", "notes.txt")
    blocked = _commit(repo, pre_commit_home, "add jobs")
    assert blocked.returncode != 0
    assert "AL101" in blocked.stdout + blocked.stderr
    assert _git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "1"

    (repo / "jobs.py").write_text("import asyncio\n\n\nasync def main(work):\n    await asyncio.create_task(work())\n")
    _git(repo, "add", "jobs.py")
    passed = _commit(repo, pre_commit_home, "add jobs")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert _git(repo, "rev-list", "--count", "HEAD").stdout.strip() == "2"


def test_fix_hook_rewrites_and_the_second_attempt_passes(
    tmp_path: Path, hooks_repo: tuple[Path, str], pre_commit_home: Path
) -> None:
    repo = _user_repo(tmp_path, hooks_repo, "auditlint-fix")
    assert _pre_commit(repo, pre_commit_home, "install").returncode == 0
    (repo / "jobs.py").write_text(DANGLING)
    _git(repo, "add", "jobs.py")
    first = _commit(repo, pre_commit_home, "add jobs")
    assert first.returncode != 0, "the hook changed a file: pre-commit must stop the commit"
    rewritten = (repo / "jobs.py").read_text()
    assert rewritten != DANGLING
    assert "add_done_callback" in rewritten
    compile(rewritten, "jobs.py", "exec")

    _git(repo, "add", "jobs.py")
    second = _commit(repo, pre_commit_home, "add jobs")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (repo / "jobs.py").read_text() == rewritten


def test_try_repo_runs_the_hook_on_named_files(tmp_path: Path, hooks_repo: tuple[Path, str], pre_commit_home: Path) -> None:
    repo = _user_repo(tmp_path, hooks_repo, "auditlint")
    (repo / "clean.py").write_text("x = 1\n")
    (repo / "jobs.py").write_text(DANGLING)
    _git(repo, "add", ".")
    clean = _pre_commit(repo, pre_commit_home, "try-repo", str(hooks_repo[0]), "auditlint", "--files", "clean.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    dirty = _pre_commit(repo, pre_commit_home, "try-repo", str(hooks_repo[0]), "auditlint", "--files", "jobs.py")
    assert dirty.returncode == 1
    assert "jobs.py:5:5: AL101" in dirty.stdout
