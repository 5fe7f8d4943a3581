"""Speed of the lint against the LibCST parse floor and against the peers, as ratios.

    python benchmarks/bench_lint.py              # django + aiohttp, 3 alternating rounds
    python benchmarks/bench_lint.py --quick      # aiohttp only, one round, no Fixit
    python benchmarks/bench_lint.py --json       # the figures as JSON
    python benchmarks/bench_lint.py --repeat 5   # more rounds (medians of 5)

Pinned source distributions are fetched with `pip download` into ~/.cache/auditlint-bench
(outside the repository; AUDITLINT_BENCH_CACHE moves it) and reused. The peers (Fixit, ruff,
bandit) are installed, pinned, into a virtual environment the script creates there. auditlint
and the LibCST probes run with the interpreter that runs this script.

Every command of a comparison runs once per round, in turn, so that the noise of a shared
machine falls on all of them alike; the table shows medians. Fixit runs on aiohttp only: on
all of django it takes a quarter of an hour a round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

CACHE = Path(os.environ.get("AUDITLINT_BENCH_CACHE", Path.home() / ".cache" / "auditlint-bench"))
PROJECTS = {"aiohttp": "aiohttp==3.11.11", "django": "django==5.1.4"}
PEERS = ("fixit==2.2.1", "ruff==0.17.6", "bandit==1.9.4", "pyinstrument==5.1.3")
RUFF_RULES = "S113,RUF006,ASYNC,PERF"
#: The file `auditlint check one_file.py` is timed on: a module of ordinary size (~400 lines).
ONE_FILE = "aiohttp/web_runner.py"
PY = sys.executable


# ---- corpora and peers ---------------------------------------------------------------------


def fetch(spec: str) -> Path:
    """Download and unpack a pinned source distribution once; return its directory."""
    target = CACHE / "src" / spec.replace("==", "-")
    if target.exists():
        return target
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [PY, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(downloads), spec],
        check=True,
    )
    name, version = spec.split("==")
    archive = next(p for p in downloads.iterdir() if p.name.lower().startswith(f"{name}-{version}".lower()))
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        with tarfile.open(archive) as tf:
            if sys.version_info >= (3, 12):
                tf.extractall(tmp, filter="data")
            else:
                tf.extractall(tmp)
        (inner,) = list(Path(tmp).iterdir())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(inner), target)
    print(f"fetched {spec} into {target}", file=sys.stderr)
    return target


def peers_venv() -> Path:
    """A virtual environment with the pinned peers; rebuilt when the pins change."""
    venv = CACHE / "peers"
    marker = venv / "pins.txt"
    pins = "\n".join(PEERS)
    if marker.exists() and marker.read_text() == pins:
        return venv / "bin"
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([PY, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PEERS], check=True)
    marker.write_text(pins)
    return venv / "bin"


# ---- probes: small programs run in a fresh interpreter over a list of files -----------------

PROBES = {
    "read": "for p in files: open(p, 'rb').read()",
    "ast": "import ast\nfor p in files:\n    try: ast.parse(open(p, 'rb').read())\n    except (SyntaxError, ValueError): pass",
    "parse": (
        "import libcst as cst\n"
        "for p in files:\n"
        "    try: cst.parse_module(open(p, 'rb').read())\n"
        "    except Exception: pass"
    ),
    # Parse, then one bare CSTVisitor traversal of every node (what a visitor-based linter pays).
    "visit": (
        "import libcst as cst\n"
        "class V(cst.CSTVisitor):\n"
        "    pass\n"
        "for p in files:\n"
        "    try: m = cst.parse_module(open(p, 'rb').read())\n"
        "    except Exception: continue\n"
        "    m.visit(V())"
    ),
    # Parse, then the engine's own walk (trivia skipped) with no rule attached.
    "walk": (
        "import libcst as cst\n"
        "from auditlint.analysis.walk import iter_children\n"
        "def walk(n):\n"
        "    for c in iter_children(n): walk(c)\n"
        "for p in files:\n"
        "    try: m = cst.parse_module(open(p, 'rb').read())\n"
        "    except Exception: continue\n"
        "    walk(m)"
    ),
    "import_libcst": "import libcst",
}

#: A control for the parallel figures: the same pure-Python work in 1 or 2 processes shows how
#: much of a second core the machine gives at the moment (other jobs may hold it).
CONTROL = (
    "import sys\n"
    "from concurrent.futures import ProcessPoolExecutor\n"
    "def burn(n):\n"
    "    s = 0\n"
    "    for i in range(n): s += i * i\n"
    "    return s\n"
    "if __name__ == '__main__':\n"
    "    with ProcessPoolExecutor(int(sys.argv[1])) as pool: list(pool.map(burn, [4_000_000] * 16))\n"
)


def probe_command(kind: str, list_file: Path) -> list[str]:
    head = "import sys\nsys.setrecursionlimit(10000)\nfiles = open(sys.argv[1]).read().splitlines()\n"
    return [PY, "-c", head + PROBES[kind], str(list_file)]


def _selection_probe(root: Path, out: Path) -> dict[str, Any]:
    """The files auditlint would lint under `root`, and those its prefilter lets through to the
    parser (computed with auditlint's own discovery and prefilter, in a fresh interpreter)."""
    code = f"""
import json, sys
from pathlib import Path
from auditlint.config import ConfigResolver
from auditlint.files import discover
from auditlint.runner import codes_for
from auditlint.engine import needed_rules, prefilter
from auditlint.registry import rule_class
from auditlint.suppress import is_skip_file
files, words, parsed = [], [], []
for item in discover([{str(root)!r}], ConfigResolver(None, None)):
    if item.settings is None:
        continue
    data = item.path.read_bytes()
    files.append(str(item.path))
    rules = [rule_class(c) for c in codes_for(item.settings, item.path)]
    if is_skip_file(data):
        continue
    if prefilter(data, rules):
        words.append(str(item.path))
    if needed_rules(data, rules)[0]:
        parsed.append(str(item.path))
Path({str(out)!r}).write_text(json.dumps({{"files": files, "words": words, "parsed": parsed}}))
"""
    subprocess.run([PY, "-c", code], check=True)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


# ---- timing ---------------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    max_rss_kb: int
    returncode: int
    stderr: str


def run_once(cmd: Sequence[str], cwd: Path, before: Optional[Callable[[], None]] = None) -> Sample:
    """Wall time and peak resident memory of one command (the largest of its processes)."""
    if before is not None:
        before()
    # Bytecode is cached (outside the repository), as it is for an installed package, even where
    # the environment turns that off: otherwise every run compiles auditlint from source.
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": str(CACHE / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    return Sample(seconds, usage.ru_maxrss, proc.returncode, text)


@dataclass
class Measure:
    name: str
    cmd: list[str]
    cwd: Path
    before: Optional[Callable[[], None]] = None
    #: Exit codes that count as a run; empty: any (Fixit's says how many files had findings).
    #: auditlint exits 2 on django, whose tests hold a file with a deliberate syntax error.
    ok_codes: tuple[int, ...] = (0, 1, 2)
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def rss_mb(self) -> float:
        return max(s.max_rss_kb for s in self.samples) / 1024


def alternate(measures: Sequence[Measure], rounds: int) -> None:
    """Run every command once per round, in turn."""
    for r in range(rounds):
        for m in measures:
            sample = run_once(m.cmd, m.cwd, m.before)
            if (m.ok_codes and sample.returncode not in m.ok_codes) or "Traceback" in sample.stderr:
                tail = "\n".join(sample.stderr.strip().splitlines()[-5:])
                raise SystemExit(f"{m.name}: exit {sample.returncode}\n{tail}")
            m.samples.append(sample)
            print(f"  round {r + 1}: {m.name}: {sample.seconds:.3f} s", file=sys.stderr)


def auditlint(*args: str) -> list[str]:
    return [PY, "-m", "auditlint", "check", "--exit-zero", "-q", *args]


def write_list(path: Path, files: Sequence[str]) -> Path:
    path.write_text("\n".join(files) + "\n")
    return path


# ---- the benchmark --------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    measured: str
    value: float
    limit: Optional[float]
    unit: str = "x"
    #: True when a smaller value is better (a ratio that must stay under the limit).
    at_most: bool = True

    @property
    def met(self) -> Optional[bool]:
        if self.limit is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit


class Bench:
    def __init__(self, rounds: int, quick: bool, work: Path) -> None:
        self.rounds = rounds
        self.quick = quick
        self.work = work
        self.bin = peers_venv()
        self.rows: list[Row] = []
        self.times: dict[str, dict[str, float]] = {}
        self.facts: dict[str, Any] = {}

    def record(self, corpus: str, measures: Sequence[Measure]) -> None:
        for m in measures:
            self.times.setdefault(corpus, {})[m.name] = round(m.median, 4)

    def row(self, *args: Any, **kwargs: Any) -> None:
        self.rows.append(Row(*args, **kwargs))

    # -- per corpus

    def corpus(self, name: str, root: Path) -> None:
        print(f"{name}: {root}", file=sys.stderr)
        here = root.parent
        rel = root.name
        sel = _selection_probe(root, self.work / f"{name}-selection.json")
        files, parsed = sel["files"], sel["parsed"]
        lines = sum(Path(p).read_bytes().count(b"\n") for p in files)
        skip = 1 - len(parsed) / len(files)
        by_words = 1 - len(sel["words"]) / len(files)
        self.facts[name] = {
            "files": len(files),
            "lines": lines,
            "parsed": len(parsed),
            "skipped_share": round(skip, 3),
            "skipped_share_by_trigger_words": round(by_words, 3),
        }
        self.row(
            f"2. prefilter ({name})",
            f"share of the {len(files)} files no trigger word lets through",
            by_words * 100,
            None,
            "%",
        )
        self.row(
            f"2. prefilter ({name})",
            "... and with the structural `ast` tests: never parsed",
            skip * 100,
            None,
            "%",
        )
        all_list = write_list(self.work / f"{name}-all.txt", files)
        parsed_list = write_list(self.work / f"{name}-parsed.txt", parsed)
        cache_dir = self.work / f"{name}-ruff-cache"

        # Engine overhead on the files it parses; the parse floor; a bare traversal; the stdlib ast.
        overhead = [
            Measure("parse floor (parsed files)", probe_command("parse", parsed_list), here),
            Measure("parse + bare CSTVisitor (parsed files)", probe_command("visit", parsed_list), here),
            Measure("parse + engine walk, no rules (parsed files)", probe_command("walk", parsed_list), here),
            Measure("auditlint -j1, parsed files", auditlint("--no-cache", "-j1", *parsed), here),
        ]
        # On aiohttp, where the reference figures were taken (django would add minutes).
        if name == "aiohttp":
            alternate(overhead, self.rounds)
            self.record(name, overhead)
            floor = overhead[0].median
            self.row(
                f"1. engine overhead ({name})",
                "all rules, one process, files it parses / their parse floor",
                overhead[3].median / floor,
                2.2,
            )
            self.row(
                f"1. bare traversal ({name})",
                "parse + CSTVisitor / parse floor",
                overhead[1].median / floor,
                None,
            )
            self.row(
                f"1. leaner walk ({name})",
                "parse + engine walk without rules / parse floor",
                overhead[2].median / floor,
                None,
            )

        cold = [
            Measure("read every file", probe_command("read", all_list), here),
            Measure("ast.parse every file", probe_command("ast", all_list), here),
            Measure("parse floor (every file)", probe_command("parse", all_list), here),
            Measure("auditlint cold -j1", auditlint("--no-cache", "-j1", rel), here),
            Measure("auditlint cold -j2", auditlint("--no-cache", "-j2", rel), here),
            Measure("CPU control, 1 process", [PY, "-c", CONTROL, "1"], here),
            Measure("CPU control, 2 processes", [PY, "-c", CONTROL, "2"], here),
            Measure(
                "ruff cold",
                [
                    str(self.bin / "ruff"),
                    "check",
                    "--isolated",
                    "--no-cache",
                    "--select",
                    RUFF_RULES,
                    "--exit-zero",
                    "-q",
                    rel,
                ],
                here,
            ),
        ]
        if name == "aiohttp":
            cold.append(
                Measure("bandit B113", [str(self.bin / "bandit"), "-q", "-r", "-t", "B113", rel], here)
            )
        alternate(cold, self.rounds)
        self.record(name, cold)
        t = {m.name: m for m in cold}
        floor_all = t["parse floor (every file)"].median
        self.row(
            f"2. cold run ({name})",
            "auditlint -j1, whole corpus / parse floor of every file",
            t["auditlint cold -j1"].median / floor_all,
            1.0,
        )
        self.row(
            f"2. ast pre-pass ({name})",
            "ast.parse of every file / parse floor",
            t["ast.parse every file"].median / floor_all,
            None,
        )
        self.row(
            f"3. parallel ({name})",
            "-j1 / -j2, cold",
            t["auditlint cold -j1"].median / t["auditlint cold -j2"].median,
            1.7 if name == "django" else None,
            at_most=False,
        )
        control = t["CPU control, 1 process"].median / t["CPU control, 2 processes"].median
        self.row(f"3. parallel ({name})", "control: pure-Python work, 1 / 2 processes", control, None)
        self.row(
            f"3. parallel ({name})",
            "-j1 / -j2 speed-up as a share of the control's",
            t["auditlint cold -j1"].median / t["auditlint cold -j2"].median / control * 100,
            None,
            "%",
        )
        if "bandit B113" in t:
            bandit = t["bandit B113"].median
            self.row(
                f"5. bandit B113 ({name})",
                "auditlint all rules -j1 / bandit B113 only",
                t["auditlint cold -j1"].median / bandit,
                1.0,
            )
            self.row(
                f"5. bandit B113 ({name})",
                "auditlint all rules -j2 / bandit B113 only",
                t["auditlint cold -j2"].median / bandit,
                1.0,
            )
        self.row(
            f"6. peak RSS ({name})",
            "auditlint -j1, one process",
            t["auditlint cold -j1"].rss_mb,
            300.0 if name == "django" else None,
            "MB",
        )
        self.row(
            f"6. peak RSS ({name})",
            "auditlint -j2, largest process",
            t["auditlint cold -j2"].rss_mb,
            300.0 if name == "django" else None,
            "MB",
        )

        # Warm: auditlint's cache and ruff's cache, both filled before the first round.
        # Without a [tool.auditlint] table the cache lives in the working directory.
        shutil.rmtree(here / ".auditlint_cache", ignore_errors=True)
        subprocess.run(auditlint(rel), cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ruff_warm = [
            str(self.bin / "ruff"),
            "check",
            "--isolated",
            "--cache-dir",
            str(cache_dir),
            "--select",
            RUFF_RULES,
            "--exit-zero",
            "-q",
            rel,
        ]
        subprocess.run(ruff_warm, cwd=here, check=True, stdout=subprocess.DEVNULL)
        warm = [
            Measure("auditlint warm", auditlint(rel), here),
            Measure("ruff warm", ruff_warm, here),
        ]
        alternate(warm, self.rounds)
        self.record(name, warm)
        importtime = run_once(
            [PY, "-X", "importtime", "-m", "auditlint", "check", "--exit-zero", "-q", rel], here
        )
        imported = sorted({m.group(1) for m in re.finditer(r"\|\s+(libcst\S*)\s*$", importtime.stderr, re.M)})
        self.facts[name]["warm_imports_libcst"] = bool(imported)
        self.row(
            f"4. warm ({name})",
            "warm / cold -j2",
            warm[0].median / t["auditlint cold -j2"].median * 100,
            5.0,
            "%",
        )
        self.row(f"4. warm ({name})", "auditlint warm / ruff warm", warm[0].median / warm[1].median, 5.0)
        self.row(f"4. warm ({name})", "LibCST modules imported by a warm run", float(len(imported)), 0.0, "")

        if name == "aiohttp" and not self.quick:
            fixit = [
                Measure(
                    "fixit (default rules, 2 processes)",
                    [str(self.bin / "fixit"), "lint", rel],
                    here,
                    ok_codes=(),
                ),
                Measure("auditlint cold -j2 (vs fixit)", auditlint("--no-cache", "-j2", rel), here),
            ]
            alternate(fixit, self.rounds)
            self.record(name, fixit)
            self.row(
                f"5. Fixit ({name})",
                "Fixit / auditlint, both 2 processes",
                fixit[0].median / fixit[1].median,
                10.0,
                at_most=False,
            )

        self.fixes(name, root)
        if name == "aiohttp":
            self.startup(root)
            self.small_run(name, root, parsed)

    def fixes(self, name: str, root: Path) -> None:
        """`--fix` on the files that have safe fixes, against the lint of those files."""
        out = self.work / f"{name}-findings.json"
        subprocess.run(
            auditlint("--no-cache", "--output-format", "json", "-o", str(out), root.name),
            cwd=root.parent,
            stderr=subprocess.DEVNULL,
        )
        fixable = sorted(
            {
                f["path"]
                for f in json.loads(out.read_text())
                if f["fix"] and f["fix"]["applicability"] == "safe"
            }
        )
        self.facts[name]["files_with_safe_fixes"] = len(fixable)
        if not fixable:
            return
        copy = self.work / f"{name}-fixcopy"

        def fresh_copy() -> None:
            if copy.exists():
                shutil.rmtree(copy)
            for rel in fixable:
                dest = copy / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root.parent / rel, dest)
            shutil.copyfile(root / "pyproject.toml", copy / root.name / "pyproject.toml")

        fresh_copy()
        measures = [
            Measure("lint of the files with fixes", auditlint("--no-cache", "-j1", *fixable), copy),
            Measure(
                "--fix of the files with fixes",
                auditlint("--no-cache", "-j1", "--fix", *fixable),
                copy,
                before=fresh_copy,
            ),
        ]
        alternate(measures, self.rounds)
        self.record(name, measures)
        self.row(
            f"7. fixes ({name})",
            f"--fix / lint, the {len(fixable)} files with safe fixes",
            measures[1].median / measures[0].median,
            3.0,
        )

    def startup(self, root: Path) -> None:
        one = root / ONE_FILE
        measures = [
            Measure("python -c pass", [PY, "-c", "pass"], root),
            Measure(
                "import libcst", probe_command("import_libcst", write_list(self.work / "none.txt", [])), root
            ),
            Measure("auditlint --version", [PY, "-m", "auditlint", "--version"], root),
            Measure(f"auditlint check {ONE_FILE}", auditlint("--no-cache", ONE_FILE), root),
        ]
        alternate(measures, max(self.rounds, 5))
        self.record("start-up", measures)
        size = one.read_bytes().count(b"\n")
        self.row("8. start-up", f"`auditlint check {ONE_FILE}` ({size} lines)", measures[3].median, 0.3, "s")

    def small_run(self, name: str, root: Path, parsed: Sequence[str]) -> None:
        """A pre-commit run on 3 changed files must not pay for a process pool."""
        three = [os.path.relpath(p, root.parent) for p in parsed[:3]]
        measures = [
            Measure("3 files -j1", auditlint("--no-cache", "-j1", *three), root.parent),
            Measure("3 files -j2", auditlint("--no-cache", "-j2", *three), root.parent),
        ]
        alternate(measures, max(self.rounds, 3))
        self.record(name, measures)
        self.row(
            "3. no pool for a few files", "3 files: -j2 / -j1", measures[1].median / measures[0].median, 1.1
        )


def profile(bin_dir: Path, root: Path, out: Path) -> str:
    """pyinstrument's call tree of `auditlint check -j1` over a corpus (the peers' interpreter,
    with this checkout and this interpreter's packages on the path)."""
    import sysconfig

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parent.parent), sysconfig.get_paths()["purelib"]]
        ),
    }
    subprocess.run(
        [
            str(bin_dir / "pyinstrument"),
            "-r",
            "text",
            "-o",
            str(out),
            "-m",
            "auditlint",
            "check",
            "--no-cache",
            "-j1",
            "-q",
            "--exit-zero",
            root.name,
        ],
        cwd=root.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions(bin_dir: Path) -> dict[str, str]:
    import libcst

    from auditlint import __version__

    out = {"auditlint": __version__, "libcst": getattr(libcst, "__version__", "?")}
    out.update({p.split("==")[0]: p.split("==")[1] for p in PEERS})
    return out


def table(bench: Bench) -> str:
    lines = ["| target | measured | value | limit | met |", "|---|---|---|---|---|"]
    for r in bench.rows:
        fmt = {"x": "{:.2f}x", "%": "{:.1f} %", "MB": "{:.0f} MB", "s": "{:.3f} s", "": "{:.0f}"}[r.unit]
        limit = "" if r.limit is None else ("<= " if r.at_most else ">= ") + fmt.format(r.limit)
        met = {None: "", True: "yes", False: "**no**"}[r.met]
        lines.append(f"| {r.target} | {r.measured} | {fmt.format(r.value)} | {limit} | {met} |")
    lines += ["", "| corpus | command | median wall |", "|---|---|---|"]
    for corpus, times in bench.times.items():
        for cmd, seconds in times.items():
            lines.append(f"| {corpus} | {cmd} | {seconds:.3f} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="aiohttp only, one round, no Fixit")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--repeat", type=int, default=None, help="rounds per comparison (default 3; 1 with --quick)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile one run over aiohttp with pyinstrument"
    )
    parser.add_argument("projects", nargs="*", help=f"a subset of: {', '.join(PROJECTS)}")
    args = parser.parse_args()
    unknown = [p for p in args.projects if p not in PROJECTS]
    if unknown:
        parser.error(f"unknown corpus: {', '.join(unknown)}")
    rounds = args.repeat or (1 if args.quick else 3)
    wanted = args.projects or (["aiohttp"] if args.quick else list(PROJECTS))
    roots = {name: fetch(PROJECTS[name]) for name in wanted}
    with tempfile.TemporaryDirectory(prefix="auditlint-bench-") as tmp:
        bench = Bench(rounds, args.quick, Path(tmp))
        for name, root in roots.items():
            bench.corpus(name, root)
        tree = ""
        if args.profile:
            target = roots.get("aiohttp") or fetch(PROJECTS["aiohttp"])
            tree = profile(bench.bin, target, CACHE / "profile-aiohttp.txt")
    report = {
        "machine": machine(),
        "versions": versions(bench.bin),
        "rounds": rounds,
        "corpora": bench.facts,
        "medians_seconds": bench.times,
        "targets": [
            {
                "target": r.target,
                "measured": r.measured,
                "value": round(r.value, 4),
                "unit": r.unit,
                "limit": r.limit,
                "met": r.met,
            }
            for r in bench.rows
        ],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        m = report["machine"]
        print(f"{m['cpus']} cores, {m['cpu']}, Python {m['python']}; medians of {rounds} round(s)")
        for name, facts in bench.facts.items():
            print(f"{name}: {facts['files']} files, {facts['lines']} lines, {facts['parsed']} parsed")
        print()
        print(table(bench))
        if tree:
            print(
                f"\npyinstrument, `auditlint check --no-cache -j1` over aiohttp ({CACHE / 'profile-aiohttp.txt'}):\n"
            )
            print("\n".join(tree.splitlines()[:80]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
