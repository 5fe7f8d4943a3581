"""The command line through a real subprocess: exit codes, formats, fixes, config, stdin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import ROOT

BAD = 'import requests\n\n\ndef f(url):\n    return requests.get(url)\n'
GOOD = 'import requests\n\n\ndef f(url):\n    return requests.get(url, timeout=5)\n'


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "auditlint", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "good.py").write_text(GOOD)
    return tmp_path


def test_findings_exit_1_and_clean_exit_0(project: Path) -> None:
    res = run("check", "bad.py", "--no-cache", cwd=project)
    assert res.returncode == 1, res.stderr
    assert "bad.py:5:12: AL401" in res.stdout
    assert "    return requests.get(url)" in res.stdout
    assert "^^^^^^^^^^^^^^^^^" in res.stdout
    res = run("good.py", "--no-cache", cwd=project)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == ""


def test_default_command_and_directory(project: Path) -> None:
    res = run(".", "--no-cache", "--output-format", "concise", cwd=project)
    assert res.returncode == 1
    assert res.stdout.strip().splitlines() == ["bad.py:5:12: AL401 `requests.get` has no timeout"]


def test_json_contract(project: Path) -> None:
    (project / "more.py").write_text("import requests\nrequests.post('u')\nrequests.get('u')\n")
    res = run("--output-format", "json", "--no-cache", ".", cwd=project)
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert [(d["path"], d["line"], d["column"]) for d in data] == [("bad.py", 5, 12), ("more.py", 2, 1), ("more.py", 3, 1)]
    first = data[0]
    assert set(first) == {"code", "name", "message", "path", "line", "column", "end_line", "end_column", "fix"}
    assert first["fix"]["applicability"] == "unsafe"
    assert first["fix"]["edits"] == [
        {"line": 5, "column": 28, "end_line": 5, "end_column": 28, "content": ", timeout=10"}
    ]


def test_missing_path_exit_2_one_line(project: Path) -> None:
    res = run("nope.py", "bad.py", "--no-cache", cwd=project)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["auditlint: error: nope.py: no such file or directory"] or (
        "nope.py: no such file or directory" in res.stderr and "Traceback" not in res.stderr
    )
    assert "bad.py:5:12" in res.stdout, "the other files are still reported"


def test_syntax_error_exit_2_and_others_reported(project: Path) -> None:
    (project / "broken.py").write_text("import requests\ndef f(:\n    pass\n")
    res = run(".", "--no-cache", cwd=project)
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if "broken.py" in line]
    assert len(errors) == 1 and "syntax error" in errors[0] and "broken.py:2:" in errors[0]
    assert "Traceback" not in res.stderr
    assert "bad.py:5:12" in res.stdout


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ("[tool.auditlint]\nselekt = ['AL4']\n", "tool.auditlint.selekt: unknown key"),
        ("[tool.auditlint]\nselect = 'AL4'\n", "tool.auditlint.select: expected a list of strings"),
        ("[tool.auditlint]\nselect = ['XX9']\n", "unknown rule selector `XX9`"),
        ("[tool.auditlint.rules.AL401]\ntimeout = 'ten'\n", "tool.auditlint.rules.AL401.timeout: expected float"),
        ("[tool.auditlint.rules.AL401]\nwait = 3\n", "tool.auditlint.rules.AL401.wait: unknown option"),
        ("[tool.auditlint]\nfix-style = 'fancy'\n", "tool.auditlint.fix-style"),
        ("[tool.auditlint\n", "invalid TOML"),
    ],
)
def test_bad_config_exit_2_names_key_and_file(project: Path, table: str, needle: str) -> None:
    (project / "pyproject.toml").write_text(table)
    res = run(".", "--no-cache", cwd=project)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert needle in lines[0] and "pyproject.toml" in lines[0]


def test_bad_option_exit_2_one_line(project: Path) -> None:
    for args in (["--bogus", "."], ["--select", "ZZ1", "."], ["--output-format", "xml", "."]):
        res = run(*args, cwd=project)
        assert res.returncode == 2, args
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("auditlint: error:"), res.stderr


def test_rule_options_reach_the_rule(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.auditlint.rules.AL401]\ntimeout = 2.5\n")
    res = run("--fix", "--unsafe-fixes", "--no-cache", "bad.py", cwd=project)
    assert res.returncode == 0, res.stderr
    assert "requests.get(url, timeout=2.5)" in (project / "bad.py").read_text()


def test_select_ignore_by_prefix(project: Path) -> None:
    assert run("--ignore", "AL4", "--no-cache", "bad.py", cwd=project).returncode == 0
    assert run("--select", "AL4", "--no-cache", "bad.py", cwd=project).returncode == 1
    assert run("--select", "AL401", "--ignore", "AL4", "--no-cache", "bad.py", cwd=project).returncode == 1


def test_fix_diff_and_idempotence(project: Path) -> None:
    before = (project / "bad.py").read_text()
    res = run("--diff", "--unsafe-fixes", "--no-cache", ".", cwd=project)
    assert res.returncode == 1
    assert "+    return requests.get(url, timeout=10)" in res.stdout
    assert (project / "bad.py").read_text() == before, "--diff writes nothing"
    res = run("--fix", "--no-cache", ".", cwd=project)
    assert (project / "bad.py").read_text() == before, "unsafe fixes need --unsafe-fixes"
    assert res.returncode == 1
    res = run("--fix", "--unsafe-fixes", "--show-fixes", "--no-cache", ".", cwd=project)
    assert res.returncode == 0, res.stderr
    assert "bad.py: AL401 Add `timeout=10`" in res.stderr
    fixed = (project / "bad.py").read_text()
    assert "requests.get(url, timeout=10)" in fixed
    mtime = (project / "bad.py").stat().st_mtime_ns
    res = run("--fix", "--unsafe-fixes", "--exit-non-zero-on-fix", "--no-cache", ".", cwd=project)
    assert res.returncode == 0
    assert (project / "bad.py").stat().st_mtime_ns == mtime, "a file that does not change is not written"


def test_fix_fixture_folder_matches_expected(tmp_path: Path) -> None:
    dest = tmp_path / "AL401"
    shutil.copytree(ROOT / "fixtures" / "AL401", dest)
    res = run("--fix", "--unsafe-fixes", "--no-cache", "--select", "AL401", ".", cwd=dest)
    assert res.returncode == 0, res.stdout + res.stderr
    for fixed in (ROOT / "fixtures" / "AL401").glob("*.fixed.py"):
        source = dest / fixed.name.replace(".fixed.py", ".py")
        assert source.read_text() == fixed.read_text()


def test_exit_non_zero_on_fix_and_exit_zero(project: Path) -> None:
    assert run("--exit-zero", "--no-cache", ".", cwd=project).returncode == 0
    res = run("--fix", "--unsafe-fixes", "--exit-non-zero-on-fix", "--no-cache", ".", cwd=project)
    assert res.returncode == 1


def test_stdin(project: Path) -> None:
    res = run("-", "--stdin-filename", "pkg/mod.py", "--no-cache", "--output-format", "concise", cwd=project, stdin=BAD)
    assert res.returncode == 1
    assert res.stdout.startswith("pkg/mod.py:5:12: AL401")
    res = run("--fix", "--unsafe-fixes", "-", cwd=project, stdin=BAD)
    assert res.returncode == 0
    assert res.stdout == BAD.replace("get(url)", "get(url, timeout=10)")


def test_statistics(project: Path) -> None:
    (project / "more.py").write_text("import requests\nrequests.post('u')\nrequests.get('u')\n")
    res = run("--statistics", "--no-cache", ".", cwd=project)
    assert res.returncode == 1
    assert res.stdout.split() == ["3", "AL401", "http-without-timeout"]


def test_github_and_junit(project: Path) -> None:
    res = run("--output-format", "github", "--no-cache", "bad.py", cwd=project)
    assert res.stdout.startswith(
        "::error title=AL401 (http-without-timeout),file=bad.py,line=5,col=12,endLine=5,endColumn=29::AL401 "
    )
    res = run("--output-format", "junit", "--no-cache", "bad.py", cwd=project)
    root = ET.fromstring(res.stdout.split("\n", 1)[1])
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 1 and cases[0].find("failure").get("type") == "AL401"  # type: ignore[union-attr]


def test_output_file(project: Path) -> None:
    res = run("--output-format", "json", "-o", "report.json", "--no-cache", ".", cwd=project)
    assert res.returncode == 1 and res.stdout == ""
    assert json.loads((project / "report.json").read_text())[0]["code"] == "AL401"


def test_noqa_and_skip_file(project: Path) -> None:
    (project / "bad.py").write_text(BAD.replace("get(url)", "get(url)  # noqa: AL401"))
    (project / "other.py").write_text("import requests\nrequests.get(\n    'u',\n)  # noqa\n")
    (project / "skipped.py").write_text("# auditlint: skip-file\nimport requests\nrequests.get('u')\n")
    (project / "wrong_code.py").write_text("import requests\nrequests.get('u')  # noqa: AL101\n")
    res = run("--output-format", "concise", "--no-cache", ".", cwd=project)
    assert res.stdout.strip().splitlines() == ["wrong_code.py:2:1: AL401 `requests.get` has no timeout"]


def test_excludes_gitignore_and_explicit_files(project: Path) -> None:
    for d in ("venv", "build", "node_modules", "generated", "__pycache__"):
        (project / d).mkdir()
        (project / d / "x.py").write_text(BAD)
    (project / ".gitignore").write_text("generated/\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (project / "pyproject.toml").write_text("[tool.auditlint]\nextend-exclude = ['good.py', 'legacy_*.py']\n")
    (project / "legacy_a.py").write_text(BAD)
    res = run("--output-format", "concise", "--no-cache", ".", cwd=project)
    assert [line.split(":")[0] for line in res.stdout.splitlines()] == ["bad.py"]
    res = run("--output-format", "concise", "--no-cache", "legacy_a.py", cwd=project)
    assert res.stdout.startswith("legacy_a.py:5:12"), "an explicitly named file is always linted"
    res = run("--output-format", "concise", "--no-cache", "--force-exclude", "legacy_a.py", cwd=project)
    assert res.stdout == "" and res.returncode == 0


def test_cache_warm_run_and_corrupt_cache(project: Path) -> None:
    first = run("--output-format", "json", ".", cwd=project)
    caches = list((project / ".auditlint_cache").glob("results-*.json"))
    assert len(caches) == 1
    second = run("--output-format", "json", ".", cwd=project)
    assert second.stdout == first.stdout and second.returncode == 1
    caches[0].write_text('{"format": 1, "files": {')
    third = run("--output-format", "json", ".", cwd=project)
    assert third.stdout == first.stdout and third.returncode == 1
    (project / "bad.py").write_text(GOOD)
    assert run(".", cwd=project).returncode == 0, "a changed file is re-linted"


def test_warm_run_does_not_import_libcst(project: Path) -> None:
    run(".", cwd=project)
    code = (
        "import sys\nfrom auditlint.cli import main\n"
        "try:\n    main(['.'])\nexcept SystemExit as e:\n    rc = e.code\n"
        "print(rc, 'libcst' in sys.modules)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert res.stdout.split()[-2:] == ["1", "False"], res.stdout + res.stderr


def test_rule_docs_command(project: Path) -> None:
    res = run("rule", "AL401", cwd=project)
    assert res.returncode == 0
    for heading in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety", "## Options"):
        assert heading in res.stdout
    res = run("rule", "--all", "--format", "json", cwd=project)
    assert any(r["code"] == "AL401" for r in json.loads(res.stdout))
    assert run("rule", "AL999", cwd=project).returncode == 2


def test_version() -> None:
    res = run("--version", cwd=ROOT)
    assert res.returncode == 0 and res.stdout.startswith("auditlint ")
