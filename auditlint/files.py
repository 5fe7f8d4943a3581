"""Path discovery: recurse into directories, honour excludes and `.gitignore`, keep explicit files."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

from auditlint.config import ConfigResolver, Settings

if TYPE_CHECKING:
    # Imported where it is used: linting named files needs no pattern matching, and the import
    # costs a tenth of the start-up budget.
    import pathspec

PY_SUFFIXES = (".py", ".pyi")


@dataclass(frozen=True)
class Discovered:
    """A file to lint with the settings that apply to it, or a path that could not be used."""

    path: Path
    settings: Optional[Settings]
    error: Optional[str] = None


_SPECS: dict[tuple[str, ...], pathspec.PathSpec] = {}


def _exclude_spec(settings: Settings) -> pathspec.PathSpec:
    key = settings.exclude + settings.extend_exclude
    spec = _SPECS.get(key)
    if spec is None:
        import pathspec

        spec = pathspec.GitIgnoreSpec.from_lines(key)
        _SPECS[key] = spec
    return spec


class _Excludes:
    """`is_excluded` for the entries of a walk, with its answers on bare names remembered (names
    repeat: `__init__.py`, `tests/`). When no pattern has a slash inside or a `!`, a pattern can
    only match an entry by its name (a match on a parent directory would have pruned the walk
    there), so the full relative path is not matched at all."""

    def __init__(self, settings: Settings) -> None:
        patterns = settings.exclude + settings.extend_exclude
        self.spec = _exclude_spec(settings)
        self.by_name = all("/" not in p.rstrip("/") and not p.startswith("!") for p in patterns)
        self.names: dict[str, bool] = {}

    def name(self, candidate: str) -> bool:
        found = self.names.get(candidate)
        if found is None:
            found = self.names[candidate] = self.spec.match_file(candidate)
        return found

    def entry(self, directory_rel: Optional[str], name: str, is_dir: bool) -> bool:
        """`directory_rel`: the directory's path relative to the root (None: outside it)."""
        candidate = name + "/" if is_dir else name
        if self.name(candidate) or self.by_name:
            return self.name(candidate)
        rel = candidate if directory_rel is None else (candidate if directory_rel == "." else f"{directory_rel}/{candidate}")
        return self.spec.match_file(rel)


_EXCLUDES: dict[tuple[str, ...], _Excludes] = {}


def _excludes(settings: Settings) -> _Excludes:
    key = settings.exclude + settings.extend_exclude
    found = _EXCLUDES.get(key)
    if found is None:
        found = _EXCLUDES[key] = _Excludes(settings)
    return found


def _relative(path: Path, root: str) -> Optional[str]:
    try:
        return os.path.relpath(path, root).replace(os.sep, "/")
    except ValueError:
        return None


def is_excluded(path: Path, settings: Settings, is_dir: bool, base: Optional[str] = None) -> bool:
    """Whether a path matches `exclude`/`extend-exclude` (gitignore-style, relative to the root,
    or to `base` when an excluded directory was named explicitly)."""
    rel = _relative(path.resolve() if not path.is_absolute() else path, base or settings.root)
    spec = _exclude_spec(settings)
    if rel is None or rel.startswith("../"):
        rel = path.name
    candidate = rel + "/" if is_dir else rel
    return spec.match_file(candidate) or spec.match_file(path.name + ("/" if is_dir else ""))


def _gitignore(directory: Path) -> Optional[pathspec.PathSpec]:
    ignore = directory / ".gitignore"
    try:
        lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _git_root(start: Path) -> Optional[Path]:
    current = start
    while True:
        if (current / ".git").exists():
            return current
        if current.parent == current:
            return None
        current = current.parent


def _parent_gitignores(directory: Path) -> list[tuple[Path, pathspec.PathSpec]]:
    """The .gitignore files above `directory` up to the repository root."""
    root = _git_root(directory)
    if root is None:
        return []
    specs = []
    current = directory.parent
    chain = []
    while True:
        try:
            current.relative_to(root)
        except ValueError:
            break
        chain.append(current)
        if current == root:
            break
        current = current.parent
    for d in reversed(chain):
        spec = _gitignore(d)
        if spec is not None:
            specs.append((d, spec))
    return specs


def _ignored(path: Path, is_dir: bool, specs: list[tuple[Path, pathspec.PathSpec]]) -> bool:
    for base, spec in specs:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        if spec.match_file(rel + "/" if is_dir else rel):
            return True
    return False


def discover(paths: list[str], resolver: ConfigResolver, *, force_exclude: bool = False) -> Iterator[Discovered]:
    """Yield every file to lint, in a deterministic order."""
    seen: set[str] = set()
    for raw in paths:
        path = Path(raw)
        if not os.path.lexists(path):
            yield Discovered(path, None, "no such file or directory")
            continue
        if path.is_dir():
            yield from _walk(path.absolute(), resolver, seen)
            continue
        settings = resolver.for_path(path.absolute())
        if force_exclude and is_excluded(path.absolute(), settings, False):
            continue
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            yield Discovered(path, settings)


def _walk(top: Path, resolver: ConfigResolver, seen: set[str]) -> Iterator[Discovered]:
    base_settings = resolver.for_directory(top)
    # A directory named on the command line is linted even if excluded; below it, excludes
    # are then matched relative to it.
    base = str(top) if is_excluded(top, base_settings, True) else None
    specs = _parent_gitignores(top) if base_settings.respect_gitignore else []
    stack: list[tuple[Path, list[tuple[Path, pathspec.PathSpec]]]] = [(top, specs)]
    while stack:
        directory, specs = stack.pop()
        settings = resolver.for_directory(directory)
        if settings.respect_gitignore:
            own = _gitignore(directory)
            if own is not None:
                specs = [*specs, (directory, own)]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            yield Discovered(directory, None, f"cannot read directory: {exc.strerror or exc}")
            continue
        subdirs = []
        excludes = _excludes(settings)
        directory_rel = _relative(directory, base or settings.root)
        if directory_rel is not None and directory_rel.startswith("../"):
            directory_rel = None
        for entry in entries:
            try:
                if entry.is_symlink():
                    # Symlinks are not followed during discovery: they may point outside the
                    # project, and --fix must never write there. Name a file to lint it.
                    continue
                is_dir = entry.is_dir()
            except OSError:
                continue
            if not is_dir and not entry.name.endswith(PY_SUFFIXES):
                continue
            if excludes.entry(directory_rel, entry.name, is_dir):
                continue
            path = Path(entry.path)
            if specs and _ignored(path, is_dir, specs):
                continue
            if is_dir:
                subdirs.append(path)
            else:
                key = os.path.abspath(path)
                if key not in seen:
                    seen.add(key)
                    yield Discovered(path, settings)
        for sub in reversed(subdirs):
            stack.append((sub, specs))


# ---- shards: a stable split of the files for CI matrices ---------------------------------

_ROOTS: dict[Path, Path] = {}


def _repository_root(directory: Path, settings: Settings) -> Path:
    root = _ROOTS.get(directory)
    if root is None:
        root = _git_root(directory) or Path(settings.root).resolve()
        _ROOTS[directory] = root
    return root


def shard_of(relative: str, total: int) -> int:
    """The shard (1-based) of a repository-relative POSIX path: the same on every machine and in
    every run, whatever else the repository holds."""
    digest = hashlib.blake2b(relative.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total + 1


def in_shard(path: Path, settings: Settings, shard: tuple[int, int]) -> bool:
    """Whether a file belongs to shard `K` of `N` (`shard == (K, N)`); the key is its path
    relative to the git repository root (else to the configuration root)."""
    absolute = path.absolute()
    root = _repository_root(absolute.parent, settings)
    rel = _relative(absolute, str(root))
    if rel is None or rel.startswith("../"):
        rel = absolute.as_posix()
    return shard_of(rel, shard[1]) == shard[0]
