"""Settings (a frozen dataclass) and `[tool.auditlint]` discovery and validation.

Configuration is read from the nearest `auditlint.toml` or `pyproject.toml` with a
`[tool.auditlint]` table, once per directory. Config is data only: it can select rules and set
options, never name code to import or run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from auditlint import __version__
from auditlint.registry import RULES, SelectorError, check_selector, select_codes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on older interpreters only
    import tomli as tomllib

DEFAULT_EXCLUDE = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".mypy_cache",
    ".nox",
    ".pants.d",
    ".pytest_cache",
    ".ruff_cache",
    ".auditlint_cache",
    ".svn",
    ".tox",
    ".venv",
    "venv",
    "__pypackages__",
    "__pycache__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
)

TARGET_VERSIONS = ("py39", "py310", "py311", "py312", "py313", "py314")
FIX_STYLES = ("stdlib", "runtime")


class ConfigError(Exception):
    """A configuration problem; the message names the file and the key."""


@dataclass(frozen=True)
class Settings:
    """Everything that decides what is linted and how; hashable so it can key the cache."""

    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    target_version: str = "py39"
    fix_style: str = "stdlib"
    unsafe_fixes: bool = False
    max_file_size: float = 2.0
    rule_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    #: Baseline file (absolute, or relative to the working directory); never changes per-file results.
    baseline: Optional[str] = field(default=None, compare=False)
    root: str = field(default=".", compare=False)
    config_path: Optional[str] = field(default=None, compare=False)

    def enabled_codes(self) -> list[str]:
        return select_codes(self.select, self.ignore, self.extend_select)

    def options_for(self, code: str) -> dict[str, Any]:
        for c, opts in self.rule_options:
            if c == code:
                return dict(opts)
        return {}

    def fingerprint(self) -> str:
        """A stable hash of everything that changes lint results (plus the tool version)."""
        payload = json.dumps(
            [
                __version__,
                self.select,
                self.ignore,
                self.extend_select,
                self.per_file_ignores,
                self.target_version,
                self.fix_style,
                self.rule_options,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_KEYS = {
    "select",
    "ignore",
    "extend-select",
    "per-file-ignores",
    "exclude",
    "extend-exclude",
    "respect-gitignore",
    "target-version",
    "fix-style",
    "unsafe-fixes",
    "max-file-size",
    "rules",
    "baseline",
}


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _selectors(value: Any, where: str) -> tuple[str, ...]:
    items = _str_list(value, where)
    for item in items:
        try:
            check_selector(item)
        except SelectorError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return items


def validate_rule_options(
    code: str, options: Mapping[str, Any], where: str
) -> tuple[tuple[str, Any], ...]:
    from auditlint.registry import rule_class

    cls = rule_class(code)
    known = {opt.name: opt for opt in cls.options}
    out = []
    for key, value in options.items():
        opt = known.get(key)
        if opt is None:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"{where}.{key}: unknown option for {code} (options: {names})")
        try:
            out.append((key, opt.validate(value)))
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    return tuple(sorted(out))


def parse_table(table: Mapping[str, Any], source: str, base: Settings) -> Settings:
    """Validate a `[tool.auditlint]` table and apply it over `base`."""
    changes: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{source}: tool.auditlint.{key}"
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key")
        if key in ("select", "ignore", "extend-select"):
            changes[key.replace("-", "_")] = _selectors(value, where)
        elif key in ("exclude", "extend-exclude"):
            changes[key.replace("-", "_")] = _str_list(value, where)
        elif key in ("respect-gitignore", "unsafe-fixes"):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false")
            changes[key.replace("-", "_")] = value
        elif key == "max-file-size":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{where}: expected a positive number of megabytes")
            changes["max_file_size"] = float(value)
        elif key == "target-version":
            if value not in TARGET_VERSIONS:
                raise ConfigError(f"{where}: expected one of {', '.join(TARGET_VERSIONS)}")
            changes["target_version"] = value
        elif key == "fix-style":
            if value not in FIX_STYLES:
                raise ConfigError(f"{where}: expected one of {', '.join(FIX_STYLES)}")
            changes["fix_style"] = value
        elif key == "baseline":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: expected a file name")
            # Relative to the config file, so the setting means the same from any directory.
            changes["baseline"] = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(source)), value))
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a table of glob = [codes]")
            changes["per_file_ignores"] = tuple(
                (glob, _selectors(codes, f"{where}.{glob}")) for glob, codes in sorted(value.items())
            )
        elif key == "rules":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a table of rule codes")
            opts = []
            for code, options in sorted(value.items()):
                if code not in RULES:
                    raise ConfigError(f"{where}.{code}: unknown rule code")
                if not isinstance(options, dict):
                    raise ConfigError(f"{where}.{code}: expected a table of options")
                opts.append((code, validate_rule_options(code, options, f"{where}.{code}")))
            changes["rule_options"] = tuple(opts)
    return replace(base, **changes)


def read_config(path: Path) -> Optional[dict[str, Any]]:
    """The auditlint table of a config file, or None when a pyproject.toml has none."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("auditlint") if isinstance(tool, dict) else None
        if table is None:
            return None
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: tool.auditlint: expected a table")
        return dict(table)
    # auditlint.toml: keys at the top level, or under [tool.auditlint] for symmetry.
    tool = data.get("tool")
    if isinstance(tool, dict) and isinstance(tool.get("auditlint"), dict) and len(data) == 1:
        return dict(tool["auditlint"])
    return dict(data)


def load_settings(path: Path, base: Optional[Settings] = None) -> Settings:
    """Settings from one config file (explicit `--config`)."""
    table = read_config(path)
    base = base or Settings()
    if table is None:
        table = {}
    settings = parse_table(table, str(path), base)
    return replace(settings, root=str(path.parent.resolve()), config_path=str(path))


class ConfigResolver:
    """Finds the settings that apply to each directory; reads each config file once."""

    def __init__(self, explicit: Optional[Path] = None, overrides: Optional[Mapping[str, Any]] = None) -> None:
        self.overrides = dict(overrides or {})
        self._by_dir: dict[str, Settings] = {}
        self._by_file: dict[str, Settings] = {}
        self._configs: dict[str, Optional[Path]] = {}
        #: The settings of directories without a configuration file (one object for all).
        self._default: Optional[Settings] = None
        self._explicit: Optional[Settings] = None
        if explicit is not None:
            self._explicit = self._apply(load_settings(explicit))

    def _apply(self, settings: Settings) -> Settings:
        return settings.with_overrides(**self.overrides)

    def default(self) -> Settings:
        return self.for_directory(Path.cwd())

    def for_path(self, path: Path) -> Settings:
        directory = path if path.is_dir() else path.parent
        return self.for_directory(directory)

    def for_directory(self, directory: Path) -> Settings:
        if self._explicit is not None:
            return self._explicit
        key = os.path.abspath(directory)
        found = self._by_dir.get(key)
        if found is not None:
            return found
        config = self._config_file(key)
        if config is None:
            if self._default is None:
                self._default = self._apply(Settings(root=str(Path.cwd())))
            settings = self._default
        else:
            cached = self._by_file.get(str(config))
            if cached is None:
                cached = self._apply(load_settings(config))
                self._by_file[str(config)] = cached
            settings = cached
        self._by_dir[key] = settings
        return settings

    def _config_file(self, directory: str) -> Optional[Path]:
        """The nearest auditlint.toml, or pyproject.toml with a [tool.auditlint] table, remembered
        per directory: a walk over thousands of directories would otherwise stat and read the
        same files up to the root for each of them."""
        if directory in self._configs:
            return self._configs[directory]
        path = Path(directory)
        own = path / "auditlint.toml"
        if own.is_file():
            result: Optional[Path] = own
        elif _declares_auditlint(path / "pyproject.toml"):
            result = path / "pyproject.toml"
        elif path.parent == path:
            result = None
        else:
            result = self._config_file(str(path.parent))
        self._configs[directory] = result
        return result


def _declares_auditlint(candidate: Path) -> bool:
    """A pyproject.toml with a [tool.auditlint] table."""
    if not candidate.is_file():
        return False
    try:
        with open(candidate, "rb") as fh:
            return b"[tool.auditlint" in fh.read()
    except OSError:
        return False
