"""Fuzzing through the whole pipeline: mutations of the fixtures, linted and fixed with every
rule. No internal error, fixed code parses (and compiles when the input did), fixes idempotent.

CI runs a bounded number of examples; AUDITLINT_FUZZ_EXAMPLES=2000 runs a longer campaign.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import libcst as cst
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlint.config import Settings
from auditlint.fixer import fix_bytes
from auditlint.registry import RULES
from tests.conftest import ROOT

EXAMPLES = int(os.environ.get("AUDITLINT_FUZZ_EXAMPLES", "30"))
SOURCES = sorted(p for p in (ROOT / "fixtures").glob("AL*/*.py") if not p.name.endswith(".fixed.py"))
SNIPPETS = [
    "await asyncio.sleep(1)",
    "for item in items:",
    "while True:",
    "    break",
    "return None",
    "try:",
    "finally:",
    "conn = await pool.acquire()",
    "asyncio.create_task(work())",
    "requests.get(url)",
    "json.dumps(payload)",
    "pass",
    "    continue",
    "async with pool.acquire() as conn:",
]


def _compiles(text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, "m.py", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SOURCES)).read_text(encoding="utf-8").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "insert"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = "    " + lines[i]
        elif op == "dedent" and lines[i].startswith("    "):
            lines[i] = lines[i][4:]
        elif op == "insert":
            indent = len(lines[i]) - len(lines[i].lstrip())
            lines.insert(i, " " * indent + draw(st.sampled_from(SNIPPETS)))
    return "\n".join(lines) + "\n"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated(), st.sampled_from(["stdlib", "runtime"]))
def test_mutated_fixtures_through_lint_and_fix(source: str, style: str) -> None:
    try:
        cst.parse_module(source)
    except Exception:  # noqa: BLE001 - only inputs LibCST accepts go further
        return
    codes = sorted(RULES)
    outcome = fix_bytes(source.encode(), "m.py", Settings(fix_style=style), codes, unsafe=True)
    assert not [e for e in outcome.errors if e.code in ("E001", "E002")], outcome.errors
    fixed = outcome.new_source.decode()
    cst.parse_module(fixed)
    if _compiles(source):
        assert _compiles(fixed)
    again = fix_bytes(outcome.new_source, "m.py", Settings(fix_style=style), codes, unsafe=True)
    assert again.new_source == outcome.new_source, "a second fix changed the code"


def test_corpus_quick_run_has_no_crash() -> None:
    """The short CI version of benchmarks/corpus.py: a slice of the standard library."""
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "corpus.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    import json

    assert res.returncode == 0, res.stdout + res.stderr
    (result,) = json.loads(res.stdout)
    assert result["files"] > 50 and result["crashes"] == 0
    assert result["compile_rate"] == 1.0 and result["idempotent_rate"] == 1.0


def test_fixture_sources_exist() -> None:
    assert len(SOURCES) >= 10 and all(isinstance(p, Path) for p in SOURCES)
