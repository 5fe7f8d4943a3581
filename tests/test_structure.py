"""The structural prefilter: a rule's `ast` test never rules out a file the rule reports in, and
the engine skips the LibCST parse only when every remaining rule's test says so."""

from __future__ import annotations

import ast

import pytest

from auditlint.analysis.structure import call_assignment_at_import, method_call_in_loop
from auditlint.config import Settings
from auditlint.engine import lint_bytes, needed_rules
from auditlint.registry import all_rule_classes, rule_class
from tests.conftest import ROOT

STRUCTURAL = [cls for cls in all_rule_classes() if cls.structure is not None]


def _bad_sources() -> list[tuple[str, str]]:
    out = []
    for cls in STRUCTURAL:
        for i, ex in enumerate(cls.examples):
            if not ex.ok:
                out.append((f"{cls.code}-example-{i}", cls.code, ex.code))
        for path in sorted((ROOT / "fixtures" / cls.code).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if f"error: {cls.code}" in text:
                out.append((str(path.relative_to(ROOT)), cls.code, text))
    return [(code, text) for _, code, text in out]


@pytest.mark.parametrize(("code", "source"), _bad_sources())
def test_structure_keeps_every_file_with_a_finding(code: str, source: str) -> None:
    test = rule_class(code).structure
    assert test is not None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        pytest.skip("not CPython syntax: LibCST decides")
    assert test(tree)


def test_structural_rules_exist() -> None:
    assert {cls.code for cls in STRUCTURAL} >= {"AL203", "AL501"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("client = make_client()\n", True),
        ("client: Client = make_client()\n", True),
        ("if X:\n    pass\nelse:\n    c = f()\n", True),
        ("try:\n    import a\nexcept ImportError:\n    c = f()\n", True),
        ("try:\n    pass\nfinally:\n    c = f()\n", True),
        ("def f():\n    c = g()\n", False),
        ("class A:\n    c = g()\n", False),
        ("for x in y:\n    c = g()\n", False),
        ("with a:\n    c = g()\n", False),
        ("x = 1\ny: int\nz = [f()]\n", False),
    ],
)
def test_call_assignment_at_import(source: str, expected: bool) -> None:
    assert call_assignment_at_import(ast.parse(source)) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("for r in rows:\n    cur.execute(q, r)\n", True),
        ("[M.objects.get(pk=i) for i in ids]\n", True),
        ("list(map(lambda r: cur.execute(q, r), rows))\n", True),
        ("for r in rows:\n    if r:\n        s.query(M).filter(x).first()\n", True),
        ("cur.execute(q)\nwhile x:\n    cur.execute(q)\n", False),
        ("for r in rows:\n    print(r)\ncur.execute(q)\n", False),
        ("async def f():\n    async for r in rows:\n        await cur.execute(q)\n", False),
    ],
)
def test_method_call_in_loop(source: str, expected: bool) -> None:
    test = method_call_in_loop({"execute", "get", "first"})
    assert test(ast.parse(source)) is expected


def test_needed_rules_skips_the_parse_only_when_every_rule_says_so() -> None:
    al203, al501, al401 = rule_class("AL203"), rule_class("AL501"), rule_class("AL401")
    quiet = b"import sqlite3\n\ndef f(cur):\n    cur.execute('select 1')\n"
    assert needed_rules(quiet, [al203]) == ([], True)
    looped = b"def f(cur, rows):\n    for r in rows:\n        cur.execute('x', r)\n"
    assert needed_rules(looped, [al203]) == ([al203], True)
    # A rule without a structural test keeps the file: no `ast` parse at all.
    with_http = b"import requests\nc = requests.Session()\ndef f(cur):\n    cur.execute('x')\n"
    kept, checked = needed_rules(with_http, [al203, al401, al501])
    assert set(kept) == {al203, al401, al501} and checked is False


def test_a_file_cpython_cannot_parse_goes_to_libcst() -> None:
    # An error, or syntax newer than the running interpreter: LibCST decides, the rules stay.
    source = b"def f(cur, rows):\n    for r in rows:\n        cur.execute('x', r)\n  bad indent\n"
    kept, checked = needed_rules(source, [rule_class("AL203")])
    assert kept == [rule_class("AL203")] and checked is False


def test_a_file_ruled_out_still_reports_syntax_errors() -> None:
    findings, errors = lint_bytes(b"cur.execute(\n", "x.py", Settings(), ["AL203"])
    assert findings == [] and [e.code for e in errors] == ["E999"]
