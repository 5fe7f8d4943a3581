"""Fixture folders `fixtures/ALnnn/`: `# error: ALnnn` markers must match the findings, the
`.fixed.py` (stdlib style) and `.runtime.fixed.py` (runtime style) files must match the output of
`--fix --unsafe-fixes`, and `snapshot.json` pins the JSON output contract.

Set AUDITLINT_UPDATE_SNAPSHOTS=1 to rewrite snapshots and expected fixed files (then review them).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from auditlint.api import fix_source, lint_source
from auditlint.config import Settings
from tests.conftest import ROOT
from tests.helpers import assert_fix_proven

FIXTURES = ROOT / "fixtures"
MARKER = re.compile(r"#\s*error:\s*(?P<codes>AL\d{3}(?:[\s,]+AL\d{3})*)")
UPDATE = os.environ.get("AUDITLINT_UPDATE_SNAPSHOTS") == "1"


def _folders() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("AL[0-9][0-9][0-9]") if p.is_dir())


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.py") if not p.name.endswith(".fixed.py"))


def _expected(path: Path, code: str) -> list[int]:
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = MARKER.search(line)
        if m:
            lines.extend(number for c in re.findall(r"AL\d{3}", m.group("codes")) if c == code)
    return lines


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("folder", _folders(), ids=lambda p: p.name)
def test_markers_match_findings(folder: Path) -> None:
    code = folder.name
    sources = _sources(folder)
    assert sources, f"{folder} has no fixture files"
    for src in sources:
        findings = lint_source(src.read_bytes(), _rel(src), Settings(), select=[code])
        assert sorted(f.line for f in findings) == _expected(src, code), src.name


@pytest.mark.parametrize("folder", _folders(), ids=lambda p: p.name)
def test_fixed_files(folder: Path) -> None:
    code = folder.name
    checked = 0
    for src in _sources(folder):
        for style, suffix in (("stdlib", ".fixed.py"), ("runtime", ".runtime.fixed.py")):
            expected = src.with_name(src.stem + suffix)
            if not expected.exists() and not (UPDATE and style == "stdlib"):
                continue
            settings = Settings(fix_style=style)
            original = src.read_text(encoding="utf-8")
            fixed = fix_source(original, _rel(src), settings, select=[code], unsafe=True)
            if UPDATE:
                if fixed != original or expected.exists():
                    expected.write_text(fixed, encoding="utf-8")
                else:
                    continue
            assert fixed == expected.read_text(encoding="utf-8"), expected.name
            assert_fix_proven(original, fixed, code, fix_style=style)
            checked += 1
    assert checked or not any(
        f.fix for s in _sources(folder) for f in lint_source(s.read_bytes(), _rel(s), Settings(), select=[code])
    ), f"{folder.name} has fixable findings but no .fixed.py file"


@pytest.mark.parametrize("folder", _folders(), ids=lambda p: p.name)
def test_snapshot(folder: Path) -> None:
    code = folder.name
    out = []
    for src in _sources(folder):
        out.extend(f.to_json() for f in lint_source(src.read_bytes(), _rel(src), Settings(), select=[code]))
    snapshot = folder / "snapshot.json"
    text = json.dumps(out, indent=2, sort_keys=True) + "\n"
    if UPDATE:
        snapshot.write_text(text, encoding="utf-8")
    assert snapshot.exists(), f"missing {snapshot}; run with AUDITLINT_UPDATE_SNAPSHOTS=1"
    assert json.loads(snapshot.read_text(encoding="utf-8")) == out
