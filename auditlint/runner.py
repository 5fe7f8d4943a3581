"""Many files: discovery, cache, a process pool for large runs, fixes written atomically, and a
deterministic order. Workers get and return plain data, never trees."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from auditlint.cache import Cache, content_hash
from auditlint.config import ConfigResolver, Settings
from auditlint.files import discover, in_shard
from auditlint.model import FileError, FileResult, Finding

#: Below this many files to parse, a process pool costs more than it saves.
PARALLEL_THRESHOLD = 24


@dataclass
class RunOptions:
    fix: bool = False
    unsafe_fixes: Optional[bool] = None
    diff: bool = False
    use_cache: bool = True
    jobs: int = 0
    want_edits: bool = False
    force_exclude: bool = False
    progress: Optional[Callable[[int, int], None]] = None
    #: Also report `noqa` codes that suppress nothing (AL001), and remove them with `fix`.
    report_unused_noqa: bool = False
    #: `(K, N)`: lint only the files of shard K of N (a stable split by path; see files.in_shard).
    shard: Optional[tuple[int, int]] = None


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    changed: list[FileResult] = field(default_factory=list)
    files: int = 0
    fixes_applied: int = 0
    #: Display path -> the codes enabled for it, for every file this run looked at.
    linted: dict[str, tuple[str, ...]] = field(default_factory=dict)


def display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        rel = str(path)
    return rel.replace(os.sep, "/")


def codes_for(settings: Settings, path: Path) -> list[str]:
    """Enabled codes for one file, after `per-file-ignores`."""
    codes = settings.enabled_codes()
    if not settings.per_file_ignores:
        return codes
    import pathspec

    try:
        rel = os.path.relpath(path.absolute(), settings.root).replace(os.sep, "/")
    except ValueError:
        rel = path.name
    for glob, selectors in settings.per_file_ignores:
        spec = pathspec.GitIgnoreSpec.from_lines([glob])
        if spec.match_file(rel) or spec.match_file(path.name):
            codes = [c for c in codes if not any(c.startswith(s) or s == "ALL" for s in selectors)]
    return codes


JobArgs = tuple[str, bytes, Settings, list[str], bool, bool, bool, bool]


def _job(args: JobArgs) -> FileResult:
    """Lint (or fix) one file; runs in a worker process or in-process."""
    display, data, settings, codes, want_edits, fix, unsafe, unused_noqa = args
    result = FileResult(display, old_source=None)
    try:
        if fix:
            from auditlint.fixer import fix_bytes

            outcome = fix_bytes(data, display, settings, codes, unsafe=unsafe, want_edits=want_edits)
            result.findings = outcome.remaining
            result.errors = outcome.errors
            result.fixes_applied = outcome.applied
            result.fixed_count = len(outcome.applied)
            if outcome.new_source != data:
                result.new_source = outcome.new_source
        else:
            from auditlint.engine import lint_bytes

            result.findings, result.errors = lint_bytes(data, display, settings, codes, want_edits=want_edits)
        if unused_noqa and not any(e.code == "E999" for e in result.errors):
            _unused_noqa(result, data, settings, codes, fix)
    except RecursionError:
        result.errors = [FileError(display, "cannot lint: the file is nested too deeply", 0, 0, "E999")]
    except MemoryError:
        result.errors = [FileError(display, "cannot lint: out of memory", 0, 0, "E902")]
    except Exception as exc:  # noqa: BLE001 - one file's failure must not lose the run
        result.errors = [FileError(display, f"internal error: {type(exc).__name__}: {exc}", 0, 0, "E001")]
    return result


def _unused_noqa(result: FileResult, data: bytes, settings: Settings, codes: list[str], fix: bool) -> None:
    """Add AL001 findings; with `fix`, drop the unused codes from the (possibly fixed) text."""
    from auditlint.suppress import apply_edits, unused_noqa

    current = result.new_source if result.new_source is not None else data
    unused = unused_noqa(current, result.path, settings, codes)
    if not fix or not unused:
        result.findings = sorted([*result.findings, *unused], key=Finding.sort_key)
        return
    from auditlint.engine import parse

    module, _ = parse(current, result.path)
    if module is None:
        return
    edits = [e for f in unused if f.fix is not None for e in f.fix.edits]
    text = apply_edits(module.code, edits)
    result.new_source = text.encode(module.encoding)
    result.fixes_applied.extend(f"{f.code} {f.fix.title}" for f in unused if f.fix is not None)
    result.fixed_count += len(unused)


def write_atomic(path: Path, data: bytes, expected_old: bytes) -> Optional[str]:
    """Replace a file's content atomically, keeping its permissions; refuse if it changed on disk.

    A symbolic link is never written through: it may point outside the project."""
    if path.is_symlink():
        return "is a symbolic link; fixes are not written through links"
    try:
        with open(path, "rb") as fh:
            current = fh.read()
    except OSError as exc:
        return f"cannot re-read before writing: {exc.strerror or exc}"
    if current != expected_old:
        return "changed on disk while auditlint ran; not written"
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".auditlint-tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        return f"cannot write: {exc.strerror or exc}"
    return None


def run(
    paths: Sequence[str],
    options: RunOptions,
    *,
    explicit_settings: Optional[Settings] = None,
    config_file: Optional[Path] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> RunResult:
    """Lint (and optionally fix) the given paths. Raises ConfigError for bad configuration."""
    resolver = ConfigResolver(config_file, overrides)
    if explicit_settings is not None:
        resolver._explicit = explicit_settings.with_overrides(**(overrides or {}))
    result = RunResult()
    caches: dict[tuple[str, str], Cache] = {}
    selections: dict[int, tuple[Settings, list[str]]] = {}
    jobs: list[tuple[Path, JobArgs, Optional[Cache], str]] = []
    for item in discover(list(paths), resolver, force_exclude=options.force_exclude):
        display = display_path(item.path)
        if item.settings is None:
            result.errors.append(FileError(display, item.error or "cannot use this path"))
            continue
        settings = item.settings
        if options.shard is not None and not in_shard(item.path, settings, options.shard):
            continue
        result.files += 1
        try:
            with open(item.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            result.errors.append(FileError(display, f"cannot read: {exc.strerror or exc}"))
            continue
        if settings.per_file_ignores:
            codes = codes_for(settings, item.path)
        else:
            # The same for every file under one configuration: computed once per settings.
            found = selections.get(id(settings))
            if found is None:
                found = selections[id(settings)] = (settings, codes_for(settings, item.path))
            codes = found[1]
        result.linted[display] = tuple(codes)
        unsafe = settings.unsafe_fixes if options.unsafe_fixes is None else options.unsafe_fixes
        cache = None
        digest = ""
        if options.use_cache and not options.fix and not options.diff:
            key = (settings.root, settings.fingerprint())
            cache = caches.get(key)
            if cache is None:
                cache = Cache(Path(settings.root), key[1])
                caches[key] = cache
            digest = content_hash(data) + ":" + ",".join(codes) + (":AL001" if options.report_unused_noqa else "")
            hit = cache.get(os.path.abspath(item.path), digest, display, options.want_edits)
            if hit is not None:
                result.findings.extend(hit[0])
                result.errors.extend(hit[1])
                continue
        fix = options.fix or options.diff
        args = (display, data, settings, codes, options.want_edits, fix, unsafe, options.report_unused_noqa)
        jobs.append((item.path, args, cache, digest))

    outcomes = _execute([j[1] for j in jobs], options)
    for (path, args, cache, digest), outcome in zip(jobs, outcomes):
        result.findings.extend(outcome.findings)
        result.errors.extend(outcome.errors)
        if cache is not None:
            cache.put(os.path.abspath(path), digest, outcome.findings, outcome.errors, options.want_edits)
        if outcome.new_source is not None:
            outcome.old_source = args[1]
            result.changed.append(outcome)
            result.fixes_applied += outcome.fixed_count
            if options.fix and not options.diff:
                problem = write_atomic(path, outcome.new_source, args[1])
                if problem:
                    result.errors.append(FileError(outcome.path, problem, 0, 0, "E903"))
    for cache in caches.values():
        cache.save()
    result.findings.sort(key=Finding.sort_key)
    result.errors.sort(key=lambda e: (e.path, e.line, e.column, e.message))
    return result


def _execute(args: list[JobArgs], options: RunOptions) -> list[FileResult]:
    jobs = options.jobs or (os.cpu_count() or 1)
    total = len(args)
    if jobs <= 1 or total < PARALLEL_THRESHOLD:
        serial = []
        for i, a in enumerate(args, 1):
            serial.append(_job(a))
            if options.progress:
                options.progress(i, total)
        return serial
    # Largest files first, in small chunks: a file's cost grows with its size, and a few big
    # files (test suites) at the end of one worker's queue would otherwise leave the other idle.
    order = sorted(range(total), key=lambda i: -len(args[i][1]))
    chunk = max(1, min(4, total // (jobs * 32)))
    out: list[Optional[FileResult]] = [None] * total
    # Imported here: multiprocessing costs a tenth of the start-up budget of a small run.
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(_job, [args[i] for i in order], chunksize=chunk)
        for done, (i, res) in enumerate(zip(order, results), 1):
            out[i] = res
            if options.progress:
                options.progress(done, total)
    return [res for res in out if res is not None]
