"""The command line (click), kept thin: options -> settings -> runner -> output."""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional, Sequence

import click

from auditlint import __version__
from auditlint.config import FIX_STYLES, TARGET_VERSIONS, ConfigError
from auditlint.output import FORMATS

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _error(message: str) -> None:
    click.echo(f"auditlint: error: {' '.join(message.split())}", err=True)


class DefaultGroup(click.Group):
    """`check` is the default command: `auditlint .` and `auditlint --fix .` work."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args.insert(0, "check")
        return super().parse_args(ctx, args)


def _split(values: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="auditlint", message="%(prog)s %(version)s")
def cli() -> None:
    """Find and fix the concurrency, resource and hot-path antipatterns of Python services."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (e.g. AL2,AL401).")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@click.option("--extend-select", multiple=True, help="Codes to enable on top of the selection.")
@click.option("--fix", is_flag=True, help="Apply fixes (safe ones; unsafe ones with --unsafe-fixes).")
@click.option("--unsafe-fixes/--no-unsafe-fixes", default=None, help="Also apply fixes that may change behaviour.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option("--show-fixes", is_flag=True, help="List the fixes applied.")
@click.option("--fix-style", type=click.Choice(FIX_STYLES), default=None, help="Write standard-library code or auditlint.runtime helpers.")
@click.option("--output-format", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), default=None, help="Write the report here.")
@click.option("--statistics", is_flag=True, help="Print a count per rule instead of the findings.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--exit-non-zero-on-fix", is_flag=True, help="Exit 1 when fixes were applied, even if nothing remains.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="Use this config file.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the results cache.")
@click.option("--quiet", "-q", is_flag=True, help="Print findings only: no summary, no progress.")
@click.option("--target-version", type=click.Choice(TARGET_VERSIONS), default=None)
@click.option("--stdin-filename", default=None, help="The name of the file read from `-` (for config and reports).")
@click.option("--force-exclude", is_flag=True, help="Apply excludes to files named on the command line too.")
@click.option("--jobs", "-j", type=click.IntRange(0), default=0, help="Worker processes (0: one per core).")
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    fix: bool,
    unsafe_fixes: Optional[bool],
    show_diff: bool,
    show_fixes: bool,
    fix_style: Optional[str],
    output_format: str,
    output_file: Optional[str],
    statistics: bool,
    exit_zero: bool,
    exit_non_zero_on_fix: bool,
    config_file: Optional[str],
    no_cache: bool,
    quiet: bool,
    target_version: Optional[str],
    stdin_filename: Optional[str],
    force_exclude: bool,
    jobs: int,
) -> int:
    """Lint PATHS (default: the current directory); `-` reads standard input."""
    from auditlint.registry import SelectorError, check_selector

    overrides: dict[str, Any] = {}
    for key, values in (("select", select), ("ignore", ignore), ("extend_select", extend_select)):
        if values:
            items = _split(values)
            for item in items:
                try:
                    check_selector(item)
                except SelectorError as exc:
                    raise click.BadParameter(str(exc), param_hint=f"--{key.replace('_', '-')}") from None
            overrides[key] = items
    if target_version:
        overrides["target_version"] = target_version
    if fix_style:
        overrides["fix_style"] = fix_style
    if unsafe_fixes is not None:
        overrides["unsafe_fixes"] = unsafe_fixes
    if config_file is not None and not Path(config_file).is_file():
        _error(f"{config_file}: config file not found")
        return EXIT_ERROR

    if paths == ("-",):
        return _check_stdin(stdin_filename, overrides, config_file, fix or show_diff, show_diff, output_format, output_file, exit_zero)

    from auditlint.runner import RunOptions, run

    want_edits = output_format in ("json", "sarif") or show_diff
    progress = None
    if not quiet and sys.stderr.isatty() and output_file is None:
        progress = _progress_printer()
    options = RunOptions(
        fix=fix,
        unsafe_fixes=unsafe_fixes,
        diff=show_diff,
        use_cache=not no_cache,
        jobs=jobs,
        want_edits=want_edits,
        force_exclude=force_exclude,
        progress=progress,
    )
    try:
        result = run(list(paths) or ["."], options, config_file=Path(config_file) if config_file else None, overrides=overrides)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_ERROR
    if progress is not None:
        click.echo("\r\x1b[K", nl=False, err=True)

    for err in result.errors:
        where = f"{err.path}:{err.line}:{err.column}" if err.line else err.path
        _error(f"{where}: {err.message}")

    if show_diff:
        for changed in result.changed:
            assert changed.old_source is not None and changed.new_source is not None
            old = changed.old_source.decode("utf-8", "replace").splitlines(keepends=True)
            new = changed.new_source.decode("utf-8", "replace").splitlines(keepends=True)
            click.echo("".join(difflib.unified_diff(old, new, f"a/{changed.path}", f"b/{changed.path}")), nl=False)
        if not quiet:
            click.echo(f"Would fix {sum(c.fixed_count for c in result.changed)} finding(s) in {len(result.changed)} file(s).", err=True)
        if result.errors:
            return EXIT_ERROR
        return EXIT_FINDINGS if result.changed else EXIT_OK

    if fix and result.changed:
        _warn_runtime_dependency(result.changed, overrides, config_file)
    unsafe = bool(unsafe_fixes)
    _emit(result.findings, result.errors, output_format, output_file, statistics, unsafe)
    if show_fixes and result.changed:
        click.echo("Fixed:", err=True)
        for changed in result.changed:
            for title in changed.fixes_applied:
                click.echo(f"  {changed.path}: {title}", err=True)
    if not quiet and output_format == "text" and not statistics:
        _summary(result.findings, result.fixes_applied, fix, unsafe)
    if result.errors:
        return EXIT_ERROR
    if exit_non_zero_on_fix and result.fixes_applied:
        return EXIT_FINDINGS
    if result.findings and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK


def _declares_auditlint(root: Path) -> bool:
    """Whether the project lists auditlint (auditlint-cst) as a runtime dependency."""
    import re

    pattern = re.compile(r"(?im)^[\s\"']*auditlint(?:-cst)?\b")
    candidates = [root / "pyproject.toml", root / "setup.cfg", root / "setup.py", *sorted(root.glob("requirements*.txt"))]
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if pattern.search(text) or "auditlint-cst" in text:
            return True
    return False


def _warn_runtime_dependency(changed: Sequence[Any], overrides: dict[str, Any], config_file: Optional[str]) -> None:
    """Runtime-style fixes import auditlint.runtime: warn once if production would lack it."""
    if not any(c.new_source and b"auditlint.runtime" in c.new_source for c in changed):
        return
    from auditlint.config import ConfigResolver

    settings = ConfigResolver(Path(config_file) if config_file else None, overrides).default()
    if not _declares_auditlint(Path(settings.root)):
        click.echo(
            "auditlint: warning: the fixes import `auditlint.runtime`, but this project does not declare "
            "`auditlint-cst` as a runtime dependency; add it, or use `--fix-style stdlib`",
            err=True,
        )


def _progress_printer() -> Any:
    def show(done: int, total: int) -> None:
        if total >= 50 and (done % 25 == 0 or done == total):
            click.echo(f"\r\x1b[Kauditlint: {done}/{total} files", nl=False, err=True)

    return show


def _emit(findings: Sequence[Any], errors: Sequence[Any], fmt: str, output_file: Optional[str], statistics: bool, unsafe: bool) -> None:
    from auditlint.output import RenderContext, render

    if statistics:
        text = _statistics(findings, unsafe)
    else:
        color = output_file is None and fmt == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        text = render(fmt, findings, errors, RenderContext(unsafe_fixes=unsafe, color=color, cwd=os.getcwd()))
    if output_file:
        Path(output_file).write_text(text, encoding="utf-8")
    elif text:
        click.echo(text, nl=False)


def _statistics(findings: Sequence[Any], unsafe: bool) -> str:
    from auditlint.output.text import fixable

    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixables = {f.code for f in findings if fixable(f, unsafe)}
    lines = [
        f"{n:>5}\t{code}\t{'[*] ' if code in fixables else ''}{names[code]}"
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def _summary(findings: Sequence[Any], fixed: int, fix: bool, unsafe: bool) -> None:
    from auditlint.model import Applicability

    n = len(findings)
    safe = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.SAFE)
    unsafe_n = sum(1 for f in findings if f.fix and f.fix.applicability is Applicability.UNSAFE)
    parts = []
    if n:
        parts.append(f"Found {n} finding{'s' if n != 1 else ''}")
        if fixed:
            parts[-1] += f" ({fixed} fixed, {n} remaining)"
    elif fixed:
        parts.append(f"Fixed {fixed} finding{'s' if fixed != 1 else ''}; nothing remains")
    if n and not fix:
        hint = []
        if safe or (unsafe and unsafe_n):
            hint.append(f"[*] {safe + (unsafe_n if unsafe else 0)} fixable with `--fix`")
        if unsafe_n and not unsafe:
            hint.append(f"{unsafe_n} more with `--fix --unsafe-fixes`")
        if hint:
            parts.append("; ".join(hint))
    if parts:
        click.echo(". ".join(parts) + ".", err=True)


def _check_stdin(
    stdin_filename: Optional[str],
    overrides: dict[str, Any],
    config_file: Optional[str],
    fix: bool,
    show_diff: bool,
    fmt: str,
    output_file: Optional[str],
    exit_zero: bool,
) -> int:
    from auditlint.config import ConfigResolver
    from auditlint.runner import codes_for, display_path

    name = stdin_filename or "-"
    path = Path(name)
    try:
        resolver = ConfigResolver(Path(config_file) if config_file else None, overrides)
        settings = resolver.for_path(path.absolute())
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_ERROR
    data = sys.stdin.buffer.read()
    display = display_path(path) if stdin_filename else "-"
    codes = codes_for(settings, path)
    if fix:
        from auditlint.fixer import fix_bytes

        unsafe = settings.unsafe_fixes
        outcome = fix_bytes(data, display, settings, codes, unsafe=unsafe, want_edits=fmt in ("json", "sarif"))
        for err in outcome.errors:
            _error(f"{err.path}:{err.line}:{err.column}: {err.message}" if err.line else f"{err.path}: {err.message}")
        if show_diff:
            old = data.decode("utf-8", "replace").splitlines(keepends=True)
            new = outcome.new_source.decode("utf-8", "replace").splitlines(keepends=True)
            click.echo("".join(difflib.unified_diff(old, new, f"a/{display}", f"b/{display}")), nl=False)
        else:
            sys.stdout.buffer.write(outcome.new_source)
            sys.stdout.flush()
        if outcome.errors:
            return EXIT_ERROR
        return EXIT_FINDINGS if outcome.remaining and not exit_zero else EXIT_OK
    from auditlint.engine import lint_bytes

    findings, errors = lint_bytes(data, display, settings, codes, want_edits=fmt in ("json", "sarif"))
    for err in errors:
        _error(f"{err.path}:{err.line}:{err.column}: {err.message}" if err.line else f"{err.path}: {err.message}")
    _emit(findings, errors, fmt, output_file, False, settings.unsafe_fixes)
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if findings and not exit_zero else EXIT_OK


@cli.command("rule")
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="Every rule.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default=None)
def rule_cmd(code: Optional[str], show_all: bool, fmt: Optional[str]) -> int:
    """Show a rule's documentation (CODE or name), or every rule with --all."""
    from auditlint import docs
    from auditlint.registry import RULES, lookup

    if show_all:
        codes = sorted(RULES)
    elif code:
        try:
            codes = [lookup(code)]
        except KeyError:
            _error(f"unknown rule `{code}`")
            return EXIT_ERROR
    else:
        _error("name a rule (e.g. `auditlint rule AL401`) or use --all")
        return EXIT_ERROR
    fmt = fmt or ("markdown" if show_all else "text")
    if fmt == "json":
        click.echo(docs.rules_json(codes))
    elif fmt == "markdown":
        click.echo("\n\n".join(docs.rule_markdown(c) for c in codes))
    else:
        click.echo("\n\n".join(docs.rule_text(c) for c in codes))
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console entry point: one line on stderr for every error, exit 2."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="auditlint", standalone_mode=False)
    except click.UsageError as exc:
        _error(exc.format_message())
        sys.exit(EXIT_ERROR)
    except click.ClickException as exc:
        _error(exc.format_message())
        sys.exit(EXIT_ERROR)
    except click.Abort:
        _error("interrupted")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
