"""The walk's remembered, name-only exclusion answers agree with `is_excluded` on full paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditlint.config import ConfigResolver, Settings
from auditlint.files import _Excludes, discover, is_excluded

TREE = [
    "a.py",
    "build/x.py",
    "pkg/__init__.py",
    "pkg/build/y.py",
    "pkg/tests/test_a.py",
    "pkg/tests/data/keep.py",
    "pkg/legacy_old.py",
    "pkg/sub/legacy_new.py",
    "venv/lib.py",
    "docs/conf.py",
    "docs/api/gen.py",
]

PATTERNS = [
    (),
    ("legacy_*.py",),
    ("pkg/tests/",),
    ("docs/api",),
    ("tests", "!pkg/tests/data/"),
    ("*.py", "!pkg/__init__.py"),
]


def _reference(root: Path, settings: Settings) -> list[str]:
    """Every file the rules of `is_excluded` keep, walking top-down and pruning excluded dirs."""
    out = []
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs[:] = sorted(d for d in dirs if not is_excluded(here / d, settings, True))
        for name in sorted(files):
            if name.endswith(".py") and not is_excluded(here / name, settings, False):
                out.append((here / name).relative_to(root).as_posix())
    return sorted(out)


@pytest.mark.parametrize("extra", PATTERNS)
def test_walk_matches_is_excluded(tmp_path: Path, extra: tuple[str, ...]) -> None:
    for rel in TREE:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    lines = ", ".join(f'"{p}"' for p in extra)
    (tmp_path / "pyproject.toml").write_text(f"[tool.auditlint]\nextend-exclude = [{lines}]\nrespect-gitignore = false\n")
    resolver = ConfigResolver(None, None)
    settings = resolver.for_directory(tmp_path)
    found = sorted(Path(d.path).relative_to(tmp_path).as_posix() for d in discover([str(tmp_path)], resolver))
    assert found == _reference(tmp_path, settings)


def test_name_only_answers_are_used_only_without_slashes_or_negations() -> None:
    assert _Excludes(Settings(extend_exclude=("legacy_*.py",))).by_name
    assert _Excludes(Settings(extend_exclude=("build/",))).by_name
    assert not _Excludes(Settings(extend_exclude=("pkg/tests",))).by_name
    assert not _Excludes(Settings(extend_exclude=("!keep.py",))).by_name
