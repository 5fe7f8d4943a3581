"""Lint and fix real code at scale: no crash, every fixed file compiles, a second fix changes
nothing. Prints files, lines, findings per rule, crashes, compile and idempotence rates.

    python benchmarks/corpus.py              # django, sqlalchemy, aiohttp, requests, celery + stdlib
    python benchmarks/corpus.py --quick      # a slice of the standard library (what CI runs)
    python benchmarks/corpus.py --json       # machine-readable figures

Source distributions are fetched with `pip download` into ~/.cache/auditlint-corpus (outside the
repository) and reused. Needs network access for the first full run only.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("AUDITLINT_CORPUS_CACHE", Path.home() / ".cache" / "auditlint-corpus"))
PROJECTS = {
    "django": "django==5.1.4",
    "sqlalchemy": "sqlalchemy==2.0.36",
    "aiohttp": "aiohttp==3.11.11",
    "requests": "requests==2.32.3",
    "celery": "celery==5.4.0",
}
QUICK_STDLIB = ("asyncio", "json", "http", "concurrent", "urllib", "email", "logging", "sqlite3")


def fetch(spec: str) -> Path:
    """Download and unpack a source distribution once; return its directory."""
    name = spec.split("==")[0]
    target = CACHE / spec.replace("==", "-")
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            # `--no-binary name`, not `:all:`: the project's own sdist, while its build
            # dependencies (setuptools, Cython) may come as wheels instead of being compiled.
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name, "-d", tmp, spec],
            check=True,
        )
        archive = next(Path(tmp).iterdir())
        unpacked = Path(tmp) / "src"
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(unpacked)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(unpacked, filter="data") if sys.version_info >= (3, 12) else tf.extractall(unpacked)
        (inner,) = list(unpacked.iterdir())
        shutil.move(str(inner), target)
    print(f"fetched {name} into {target}", file=sys.stderr)
    return target


def stdlib_slice(quick: bool) -> Path:
    lib = Path(sysconfig.get_paths()["stdlib"])
    if not quick:
        return lib
    out = Path(tempfile.mkdtemp(prefix="auditlint-stdlib-"))
    for name in QUICK_STDLIB:
        src = lib / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    return out


def auditlint(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "auditlint", "--no-cache", "--select", "ALL", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
    )


def py_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if p.is_file() and not p.is_symlink())


def compiles(data: bytes, name: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(data, name, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


def check(name: str, source: Path, *, fix_style: str = "stdlib") -> dict[str, Any]:
    """Lint a tree, fix a copy, and verify the fixed copy."""
    files = py_files(source)
    lines = sum(p.read_bytes().count(b"\n") for p in files)
    started = time.perf_counter()
    lint = auditlint("--output-format", "json", "--exit-zero", ".", cwd=source)
    lint_seconds = time.perf_counter() - started
    findings = json.loads(lint.stdout or "[]")
    errors = [line for line in lint.stderr.splitlines() if line.startswith("auditlint: error:")]
    crashes = [e for e in errors if "internal error" in e or "Traceback" in e]
    crashes += ["Traceback in lint run"] if "Traceback" in lint.stderr else []
    by_rule = collections.Counter(f["code"] for f in findings)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / name
        shutil.copytree(source, copy, symlinks=True)
        before = {p: p.read_bytes() for p in py_files(copy)}
        started = time.perf_counter()
        fixed_run = auditlint("--fix", "--unsafe-fixes", "--fix-style", fix_style, "--exit-zero", "-q", ".", cwd=copy)
        fix_seconds = time.perf_counter() - started
        crashes += [e for e in fixed_run.stderr.splitlines() if "internal error" in e or "does not parse" in e]
        crashes += ["Traceback in fix run"] if "Traceback" in fixed_run.stderr else []
        changed = [p for p, old in before.items() if p.read_bytes() != old]
        compiled = [p for p in changed if not compiles(before[p], str(p)) or compiles(p.read_bytes(), str(p))]
        after = {p: p.read_bytes() for p in changed}
        second = auditlint("--fix", "--unsafe-fixes", "--fix-style", fix_style, "--exit-zero", "-q", ".", cwd=copy)
        crashes += ["Traceback in second fix run"] if "Traceback" in second.stderr else []
        stable = [p for p in changed if p.read_bytes() == after[p]]
        also_unchanged = all(p.read_bytes() == old for p, old in before.items() if p not in after)
    return {
        "project": name,
        "files": len(files),
        "lines": lines,
        "findings": sum(by_rule.values()),
        "by_rule": dict(sorted(by_rule.items())),
        "file_errors": len(errors) - len([e for e in errors if "internal error" in e]),
        "crashes": len(crashes),
        "crash_lines": crashes[:20],
        "fixed_files": len(changed),
        "compile_rate": (len(compiled) / len(changed)) if changed else 1.0,
        "idempotent_rate": (len(stable) / len(changed)) if changed and also_unchanged else (1.0 if also_unchanged else 0.0),
        "lint_seconds": round(lint_seconds, 2),
        "fix_seconds": round(fix_seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only a slice of the standard library")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--fix-style", default="stdlib", choices=("stdlib", "runtime"))
    parser.add_argument("projects", nargs="*", help=f"subset of {', '.join(PROJECTS)} and 'stdlib'")
    args = parser.parse_args()
    wanted = args.projects or ([] if args.quick else [*PROJECTS, "stdlib"])
    if args.quick and not args.projects:
        wanted = ["stdlib"]
    results = []
    for name in wanted:
        source = stdlib_slice(args.quick) if name == "stdlib" else fetch(PROJECTS[name])
        results.append(check(name, source, fix_style=args.fix_style))
        print(f"checked {name}: {json.dumps(results[-1])}", file=sys.stderr)  # survives a later failure
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        codes = sorted({c for r in results for c in r["by_rule"]})
        head = ["project", "files", "lines", "findings", *codes, "file errors", "crashes", "fixed files", "compile", "idempotent", "lint s", "fix s"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in results:
            row = [r["project"], r["files"], r["lines"], r["findings"], *[r["by_rule"].get(c, 0) for c in codes],
                   r["file_errors"], r["crashes"], r["fixed_files"], f"{r['compile_rate']:.0%}", f"{r['idempotent_rate']:.0%}",
                   r["lint_seconds"], r["fix_seconds"]]
            print("| " + " | ".join(str(x) for x in row) + " |")
        for r in results:
            for line in r["crash_lines"]:
                print(f"CRASH {r['project']}: {line}", file=sys.stderr)
    bad = any(r["crashes"] or r["compile_rate"] < 1 or r["idempotent_rate"] < 1 for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
