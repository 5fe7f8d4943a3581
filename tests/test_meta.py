"""Every rule is complete: documented, unique, listed in the README and in rules/, with fresh
generated pages."""

from __future__ import annotations

import re

from auditlint.docs import index_markdown, rule_markdown
from auditlint.registry import RULES, all_rule_classes
from tests.conftest import ROOT

HEADINGS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety", "## Options")


def test_rule_docs_have_every_heading() -> None:
    for cls in all_rule_classes():
        doc = cls.docs()
        positions = [doc.find(h) for h in HEADINGS]
        assert all(p >= 0 for p in positions), f"{cls.code} lacks {[h for h, p in zip(HEADINGS, positions) if p < 0]}"
        assert positions == sorted(positions), f"{cls.code}: headings out of order"
        assert cls.summary and cls.fix_safety in ("safe", "unsafe", "none")


def test_codes_and_names_unique_and_consistent() -> None:
    classes = all_rule_classes()
    assert len({c.code for c in classes}) == len(classes)
    assert len({c.name for c in classes}) == len(classes)
    for cls in classes:
        assert RULES[cls.code][0] == cls.name
        assert re.fullmatch(r"AL\d{3}", cls.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.name)
        assert RULES[cls.code][1].endswith(cls.code.lower() + "_" + cls.name.replace("-", "_"))


def test_every_rule_listed_in_readme_and_rules_folder() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for cls in all_rule_classes():
        assert f"[{cls.code}](rules/{cls.code}.md) | `{cls.name}`" in readme, cls.code
        page = ROOT / "rules" / f"{cls.code}.md"
        assert page.exists(), f"run `python -m auditlint.docs rules`: {page} is missing"
        assert page.read_text(encoding="utf-8") == rule_markdown(cls.code), (
            f"{page} is stale: run `python -m auditlint.docs rules`"
        )
    assert (ROOT / "rules" / "README.md").read_text(encoding="utf-8") == index_markdown(sorted(RULES))


def test_every_rule_has_a_fixture_folder() -> None:
    for cls in all_rule_classes():
        folder = ROOT / "fixtures" / cls.code
        assert (folder / "snapshot.json").exists(), f"{cls.code} has no fixture snapshot"
