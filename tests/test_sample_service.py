"""The proof on a whole service: `fixtures/sample_service` holds every antipattern of the 14
rules; `auditlint --fix --unsafe-fixes` fixes copies of it in both styles; the fixed copies
pass the same behaviour tests as the original (`tests/sample_service/behaviour.py`, against
PostgreSQL, Redis and a stub HTTP server on loopback), nothing fixable remains, and a second
`--fix` changes nothing. Timings are `benchmarks/audit_table.py`'s business, not a test's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from auditlint.registry import RULES
from tests.sample_service import harness


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The original service (copied, so the project's own excludes do not apply) and the copies
    fixed in each style."""
    base = tmp_path_factory.mktemp("sample_service")
    out = {"original": harness.copy_service(base / "original")}
    for style in harness.STYLES:
        harness.fix_copy(base / style, style)
        out[style] = base / style
    return out


def _findings(root: Path, *extra: str) -> list[dict[str, Any]]:
    result = harness.auditlint(["check", "--output-format", "json", *extra, "."], root)
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_the_original_has_every_antipattern(copies: dict[str, Path]) -> None:
    codes = {f["code"] for f in _findings(copies["original"])}
    assert codes == set(RULES)


@pytest.mark.parametrize("style", harness.STYLES)
def test_nothing_fixable_remains(copies: dict[str, Path], style: str) -> None:
    remaining = _findings(copies[style], "--unsafe-fixes")
    assert [f for f in remaining if f["fix"] is not None] == []
    # What is left is reported without a fix, by design (see the rule pages).
    assert len(remaining) < len(_findings(copies["original"])) / 2


@pytest.mark.parametrize("style", harness.STYLES)
def test_the_fixes_changed_the_service(copies: dict[str, Path], style: str) -> None:
    before, after = harness.sources(copies["original"]), harness.sources(copies[style])
    assert before.keys() == after.keys()
    changed = {path for path in before if before[path] != after[path]}
    assert {"billing/jobs.py", "billing/webhooks.py", "billing/repository.py", "billing/ledger.py"} <= changed
    uses_runtime = any("auditlint.runtime" in text for text in after.values())
    assert uses_runtime == (style == "runtime")


@pytest.mark.parametrize("style", harness.STYLES)
def test_a_second_fix_changes_nothing(copies: dict[str, Path], style: str) -> None:
    before = harness.sources(copies[style])
    result = harness.auditlint(["--fix", "--unsafe-fixes", "."], copies[style])
    assert result.returncode in (0, 1), result.stderr
    assert harness.sources(copies[style]) == before


@pytest.mark.parametrize("variant", ["original", *harness.STYLES])
def test_behaviour_is_kept(copies: dict[str, Path], variant: str) -> None:
    missing = harness.unreachable()
    if missing:
        pytest.skip(missing)
    root = harness.ORIGINAL if variant == "original" else copies[variant]
    result = harness.run_behaviour(root)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
