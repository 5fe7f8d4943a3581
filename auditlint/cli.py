"""The command line (click), kept thin: options -> settings -> runner -> output."""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import click

from auditlint import __version__
from auditlint.config import FIX_STYLES, TARGET_VERSIONS, ConfigError
from auditlint.output import FORMATS

if TYPE_CHECKING:
    from auditlint.baseline import SourceReader
    from auditlint.gitdiff import ChangedLines
    from auditlint.model import Finding

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


def _parse_shard(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[tuple[int, int]]:
    """`--shard K/N` -> (K, N), 1 <= K <= N."""
    if value is None:
        return None
    k, sep, n = value.partition("/")
    if sep and k.strip().isdigit() and n.strip().isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise click.BadParameter(f"`{value}` is not K/N with 1 <= K <= N (e.g. 2/4)", param_hint="--shard")


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
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), default=None, help="Report only findings this baseline file does not record.")
@click.option("--write-baseline", type=click.Path(dir_okay=False), default=None, help="Record the current findings in this file and exit 0.")
@click.option("--strict-baseline", is_flag=True, help="Exit 1 when baselined findings are gone but the baseline still lists them.")
@click.option("--diff-base", "--changed-since", "diff_base", metavar="REF", default=None, help="Report only findings on lines changed since the git revision REF.")
@click.option("--report-unused-noqa", is_flag=True, help="Report `# noqa: ALnnn` codes that suppress nothing (AL001).")
@click.option("--add-noqa", is_flag=True, help="Add `# noqa: CODE` comments for every current finding.")
@click.option("--shard", metavar="K/N", default=None, callback=_parse_shard, help="Lint only shard K of N (a stable split by repository-relative path, for CI matrices).")
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
    baseline_file: Optional[str],
    write_baseline: Optional[str],
    strict_baseline: bool,
    diff_base: Optional[str],
    report_unused_noqa: bool,
    add_noqa: bool,
    shard: Optional[tuple[int, int]],
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
    conflict = _conflict(add_noqa=add_noqa, fix=fix, diff=show_diff, write_baseline=bool(write_baseline), stdin=paths == ("-",))
    if conflict:
        _error(conflict)
        return EXIT_ERROR
    try:
        gate = _Gate.create(baseline_file, write_baseline, strict_baseline, diff_base, overrides, config_file)
    except (ConfigError, ValueError) as exc:
        _error(str(exc))
        return EXIT_ERROR

    if paths == ("-",) and shard is not None:
        _error("--shard needs files, not standard input")
        return EXIT_ERROR
    if paths == ("-",):
        return _check_stdin(
            stdin_filename, overrides, config_file, fix or show_diff, show_diff, output_format, output_file, exit_zero, gate, quiet
        )

    from auditlint.runner import RunOptions, run

    want_edits = output_format in ("json", "sarif") or show_diff
    progress = _ProgressBar() if not quiet and sys.stderr.isatty() else None
    options = RunOptions(
        fix=fix,
        unsafe_fixes=unsafe_fixes,
        diff=show_diff,
        use_cache=not no_cache,
        jobs=jobs,
        want_edits=want_edits,
        force_exclude=force_exclude,
        progress=progress,
        report_unused_noqa=report_unused_noqa,
        shard=shard,
    )
    try:
        result = run(list(paths) or ["."], options, config_file=Path(config_file) if config_file else None, overrides=overrides)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_ERROR
    finally:
        if progress is not None:
            progress.close()

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
    if write_baseline:
        return _write_baseline(Path(write_baseline), result.findings, bool(result.errors), quiet)
    try:
        findings, stale_failure = gate.apply(result.findings, result.linted, quiet)
    except ValueError as exc:
        _error(str(exc))
        return EXIT_ERROR
    if add_noqa:
        return _add_noqa(findings, bool(result.errors), quiet)
    unsafe = bool(unsafe_fixes)
    _emit(findings, result.errors, output_format, output_file, statistics, unsafe)
    if show_fixes and result.changed:
        click.echo("Fixed:", err=True)
        for changed in result.changed:
            for title in changed.fixes_applied:
                click.echo(f"  {changed.path}: {title}", err=True)
    if not quiet and output_format == "text" and not statistics:
        _summary(findings, result.fixes_applied, fix, unsafe)
    if result.errors:
        return EXIT_ERROR
    if exit_non_zero_on_fix and result.fixes_applied:
        return EXIT_FINDINGS
    if (findings or stale_failure) and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_OK


def _conflict(*, add_noqa: bool, fix: bool, diff: bool, write_baseline: bool, stdin: bool) -> Optional[str]:
    if add_noqa and (fix or diff or write_baseline):
        return "--add-noqa cannot be combined with --fix, --diff or --write-baseline"
    if write_baseline and diff:
        return "--write-baseline cannot be combined with --diff"
    if stdin and (add_noqa or write_baseline):
        return "--add-noqa and --write-baseline need files, not standard input"
    return None


class _Gate:
    """What is reported of the findings: those the baseline does not record, and (with
    `--diff-base`) those on changed lines. The baseline sees every finding first, so that a
    baselined finding outside the diff is not taken for a fixed one."""

    def __init__(self, baseline: Optional[Path], strict: bool, changed: Optional[ChangedLines]) -> None:
        self.baseline = baseline
        self.strict = strict
        self.changed = changed

    @classmethod
    def create(
        cls,
        baseline_file: Optional[str],
        write_baseline: Optional[str],
        strict: bool,
        diff_base: Optional[str],
        overrides: Mapping[str, Any],
        config_file: Optional[str],
    ) -> _Gate:
        """Raises ValueError (one line) for a bad combination, an unusable git revision."""
        baseline: Optional[Path] = None
        if baseline_file:
            baseline = Path(baseline_file)
        elif not write_baseline:
            from auditlint.config import ConfigResolver

            configured = ConfigResolver(Path(config_file) if config_file else None, overrides).default().baseline
            baseline = Path(configured) if configured else None
        if strict and baseline is None and not write_baseline:
            raise ValueError("--strict-baseline needs a baseline (--baseline FILE or `baseline` in the config)")
        changed = None
        if diff_base is not None:
            from auditlint.gitdiff import GitDiffError, changed_lines

            try:
                changed = changed_lines(diff_base)
            except GitDiffError as exc:
                raise ValueError(str(exc)) from None
        return cls(baseline, strict, changed)

    def apply(
        self, findings: Sequence[Finding], linted: Mapping[str, Sequence[str]], quiet: bool, read: Optional[SourceReader] = None
    ) -> tuple[list[Finding], bool]:
        """(the findings to report, whether --strict-baseline fails the run)."""
        out = list(findings)
        stale_failure = False
        if self.baseline is not None:
            from auditlint import baseline as bl

            try:
                entries = bl.load(self.baseline)
                outcome = bl.apply(self.baseline, entries, out, linted, read or bl.read_source)
            except bl.BaselineError as exc:
                raise ValueError(str(exc)) from None
            out = outcome.new
            if outcome.stale and (self.strict or not quiet):
                _report_stale(self.baseline, outcome.stale, self.strict)
            stale_failure = self.strict and bool(outcome.stale)
            if outcome.absorbed and not quiet:
                click.echo(f"auditlint: {outcome.absorbed} finding(s) recorded in {self.baseline} not shown.", err=True)
        if self.changed is not None:
            changed = self.changed
            out = [f for f in out if changed.touches(f.path, f.line, f.end_line)]
        return out, stale_failure


def _report_stale(path: Path, stale: Sequence[Any], strict: bool) -> None:
    total = sum(e.count for e in stale)
    verb = "error" if strict else "note"
    click.echo(
        f"auditlint: {verb}: {total} finding(s) recorded in the baseline no longer occur; "
        f"shrink it with `auditlint --write-baseline {path}`",
        err=True,
    )
    for entry in stale[:20]:
        where = f" in `{entry.scope}`" if entry.scope else ""
        times = f" (x{entry.count})" if entry.count > 1 else ""
        click.echo(f"  {entry.path}: {entry.code}{where}: {entry.snippet}{times}", err=True)
    if len(stale) > 20:
        click.echo(f"  ... and {len(stale) - 20} more", err=True)


def _write_baseline(path: Path, findings: Sequence[Finding], had_errors: bool, quiet: bool) -> int:
    from auditlint.baseline import BaselineError, write

    try:
        count = write(path, findings)
    except BaselineError as exc:
        _error(str(exc))
        return EXIT_ERROR
    if not quiet:
        click.echo(f"auditlint: recorded {count} finding(s) in {path}.", err=True)
    # A file that could not be linted is missing from the baseline: say so with the exit code.
    return EXIT_ERROR if had_errors else EXIT_OK


def _add_noqa(findings: Sequence[Finding], had_errors: bool, quiet: bool) -> int:
    from auditlint.runner import write_atomic
    from auditlint.suppress import add_noqa

    by_path: dict[str, list[Finding]] = {}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    added = files = 0
    failed = had_errors
    for display, items in sorted(by_path.items()):
        path = Path(display)
        try:
            data = path.read_bytes()
        except OSError as exc:
            _error(f"{display}: cannot read: {exc.strerror or exc}")
            failed = True
            continue
        new, count = add_noqa(data, items)
        if not count:
            continue
        problem = write_atomic(path, new, data)
        if problem:
            _error(f"{display}: {problem}")
            failed = True
            continue
        added += count
        files += 1
    if not quiet:
        click.echo(f"Added {added} noqa directive(s) to {files} file(s).", err=True)
    return EXIT_ERROR if failed else EXIT_OK


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


class _ProgressBar:
    """click's progress bar on stderr (a terminal only; the caller checks), shown once a run has
    enough files to lint for it to matter, and erased when the run ends."""

    MIN_FILES = 50

    def __init__(self) -> None:
        self.bar: Optional[Any] = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if total < self.MIN_FILES:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="auditlint", file=sys.stderr, show_pos=True, width=30)
            self.bar.render_progress()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            # Erase the bar and show the cursor again (click hides it while drawing).
            sys.stderr.write("\r\x1b[K\x1b[?25h")
            sys.stderr.flush()
            self.bar = None


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
    gate: _Gate,
    quiet: bool,
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
    from auditlint.baseline import read_source
    from auditlint.suppress import decode_source

    text = decode_source(data)[0]
    try:
        findings, stale_failure = gate.apply(
            findings, {display: tuple(codes)}, quiet, lambda p: text if p == display else read_source(p)
        )
    except ValueError as exc:
        _error(str(exc))
        return EXIT_ERROR
    _emit(findings, errors, fmt, output_file, False, settings.unsafe_fixes)
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if (findings or stale_failure) and not exit_zero else EXIT_OK


_UNUSED_NOQA_DOC = """\
AL001 unused-noqa

## What it does
Reports `# noqa: ALnnn` codes that suppress no finding on their line. Off by default; on with
`--report-unused-noqa`. Only auditlint's own codes are judged, and only those enabled for the
file; other tools' codes and a bare `# noqa` are left alone.

## Why is this bad?
A suppression that outlives its finding hides the next real problem on that line.

## Fix safety
`--report-unused-noqa --fix` removes the unused codes (the whole comment when nothing is left,
keeping any words after it). Safe: it changes comments only.

## Options
`# noqa: AL001` on a line keeps its directive as it is."""


@cli.command("merge")
@click.argument("reports", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), default=None, help="Write the merged report here.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when the merged report has findings.")
def merge_cmd(reports: tuple[str, ...], output_file: Optional[str], exit_zero: bool) -> int:
    """Combine the JSON or SARIF reports of `check --shard K/N` runs into one report."""
    from auditlint.merge import MergeError, merge_files

    try:
        text, _, count = merge_files([Path(r) for r in reports])
    except MergeError as exc:
        _error(str(exc))
        return EXIT_ERROR
    if output_file:
        Path(output_file).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    return EXIT_FINDINGS if count and not exit_zero else EXIT_OK


@cli.command("rule")
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="Every rule.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default=None)
def rule_cmd(code: Optional[str], show_all: bool, fmt: Optional[str]) -> int:
    """Show a rule's documentation (CODE or name), or every rule with --all."""
    from auditlint import docs
    from auditlint.registry import RULES, lookup

    if code and not show_all and code.upper() in ("AL001", "UNUSED-NOQA"):
        click.echo(_UNUSED_NOQA_DOC)
        return EXIT_OK
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


@cli.command("server")
def server_cmd() -> int:
    """Run the language server (LSP over standard input and output) for editors."""
    try:
        from auditlint.lsp import serve
    except ImportError as exc:
        _error(f"`auditlint server` needs pygls ({exc}): pip install 'auditlint-cst[lsp]'")
        return EXIT_ERROR
    serve()
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
