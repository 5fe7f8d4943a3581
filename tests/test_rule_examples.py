"""Every rule's examples run as tests: ok ones give no finding, bad ones give their findings and
their fixed text, which parses, compiles, re-lints clean and is stable under a second fix."""

from __future__ import annotations

import pytest

from auditlint.registry import all_rule_classes
from auditlint.rule import Example, Rule
from tests.helpers import assert_fix_proven, fix, lint


def _cases() -> list[tuple[type[Rule], Example, str]]:
    out = []
    for cls in all_rule_classes():
        n_ok = n_bad = 0
        for ex in cls.examples:
            if ex.ok:
                n_ok += 1
                out.append((cls, ex, f"{cls.code}-ok-{n_ok}"))
            else:
                n_bad += 1
                out.append((cls, ex, f"{cls.code}-bad-{n_bad}"))
    return out


CASES = _cases()


@pytest.mark.parametrize(("cls", "example"), [(c, e) for c, e, _ in CASES], ids=[i for _, _, i in CASES])
def test_example(cls: type[Rule], example: Example) -> None:
    kw = {"options": example.options, "fix_style": example.fix_style}
    findings = lint(example.code, cls.code, **kw)
    if example.ok:
        assert findings == [], f"{cls.code} fired on an ok example: {findings}"
        return
    assert len(findings) == example.count, findings
    assert all(f.code == cls.code for f in findings)
    if example.fixed is None:
        assert fix(example.code, cls.code, **kw) == example.code, "a report-only example was changed"
        return
    fixed = fix(example.code, cls.code, **kw)
    assert fixed == example.fixed
    assert_fix_proven(example.code, fixed, cls.code, **kw)


def test_every_rule_has_ok_and_bad_examples() -> None:
    for cls in all_rule_classes():
        assert any(e.ok for e in cls.examples), cls.code
        assert any(not e.ok for e in cls.examples), cls.code
