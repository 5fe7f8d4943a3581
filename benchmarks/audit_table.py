"""Reproduce the audit's "Performance Impact of Fixes" table on the sample service.

Run `python benchmarks/audit_table.py` with PostgreSQL and Redis on loopback (the addresses of
`AUDITLINT_TEST_PG_DSN` / `AUDITLINT_TEST_REDIS_URL`, as for the tests). It

1. copies `fixtures/sample_service` and fixes two copies with `auditlint --fix --unsafe-fixes`,
   one in the default stdlib style and one with `fix-style = "runtime"` (the "after" is the
   tool's output, never written by hand);
2. checks that `auditlint` then reports nothing fixable and that a second `--fix` changes
   nothing;
3. runs the behaviour tests (`tests/sample_service/behaviour.py`) on the original and both copies;
4. measures each version in a fresh interpreter, with injected latency (`pg_sleep` per
   connection checkout, a sleep per request at the stub HTTP server), and prints the table.

Latencies are scaled down (`--latency`, default 50 ms where the audit's figures imply about
0.5 s) so the run takes a couple of minutes; the ratios are what carries over. Not a test:
figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sample_service import harness  # noqa: E402 - after the path tweak
from tests.sample_service.scenarios import Result, child, collect  # noqa: E402

VARIANTS = ("before", "stdlib", "runtime")


# ---- the table ----------------------------------------------------------------------------------


def _ratio(before: float, after: float) -> str:
    return f"{before / after:.1f}x faster" if after > 0 else "-"


def _hang(outcome: list[Any]) -> str:
    what, seconds = outcome
    return (
        f"no answer after {seconds:.0f} s (still waiting)"
        if what == "hang"
        else f"{what} after {seconds:.1f} s"
    )


def table(r: dict[str, dict[str, Result]], args: argparse.Namespace) -> list[str]:
    lat = f"{args.latency * 1000:.0f} ms"
    rows = [
        "| issue | before | after (stdlib) | after (runtime) | improvement (stdlib / runtime) |",
        "|---|---|---|---|---|",
    ]
    j = r["jobs"]
    rows.append(
        f"| background job queries ({args.orgs} orgs x {args.claims} claims, {lat} per call) "
        + "".join(f"| {j[v]['seconds']:.2f} s " for v in VARIANTS)
        + f"| {_ratio(j['before']['seconds'], j['stdlib']['seconds'])} / "
        f"{_ratio(j['before']['seconds'], j['runtime']['seconds'])} |"
    )
    d = r["redelivery"]
    rows.append(
        f"| webhook delivery ({args.webhooks} webhooks redelivered, {lat} per receiver) "
        + "".join(f"| {d[v]['seconds']:.2f} s, peak {d[v]['peak']} at once " for v in VARIANTS)
        + f"| {_ratio(d['before']['seconds'], d['stdlib']['seconds'])} / "
        f"{_ratio(d['before']['seconds'], d['runtime']['seconds'])} |"
    )
    f = r["fan_out"]
    rows.append(
        f"| webhook fan-out ({args.webhooks} webhooks of one event, {lat} per receiver) "
        + "".join(f"| {f[v]['seconds']:.2f} s, peak {f[v]['peak']} at once " for v in VARIANTS)
        + f"| peak {f['before']['peak']} -> {f['stdlib']['peak']} / {f['runtime']['peak']} "
        f"(time x{f['stdlib']['seconds'] / f['before']['seconds']:.1f} / "
        f"x{f['runtime']['seconds'] / f['before']['seconds']:.1f}) |"
    )
    m = r["memory"]

    def mem(v: str) -> str:
        x = m[v]
        return (
            f"{x['rss_growth']:+.1f} MiB RSS, threads {x['threads'][0]} -> {x['threads'][1]}, "
            f"tasks {x['tasks'][0]} -> {x['tasks'][1]}"
        )

    rows.append(
        f"| memory ({args.reloads} job reloads, time-compressed) "
        + "".join(f"| {mem(v)} " for v in VARIANTS)
        + f"| threads +{m['before']['threads'][1] - m['before']['threads'][0]} -> "
        f"+{m['stdlib']['threads'][1] - m['stdlib']['threads'][0]} / "
        f"+{m['runtime']['threads'][1] - m['runtime']['threads'][0]} |"
    )
    e = r["errors"]

    def err(v: str) -> str:
        x = e[v]
        return (
            f"{x['ok']} served, {x['faults']} injected faults, {x['stuck']} stuck; "
            f"{x['checked_out']}/{x['pool']} connections left checked out"
        )

    rows.append(
        f"| connection pool ({args.requests} requests, every {args.fault_every}th checkout fails) "
        + "".join(f"| {err(v)} " for v in VARIANTS)
        + f"| stuck {e['before']['stuck']} -> {e['stdlib']['stuck']} / {e['runtime']['stuck']} |"
    )
    h = r["hang"]
    rows.append(
        "| external API that never answers (requests / aiohttp client) "
        + "".join(f"| {_hang(h[v]['sync'])} / {_hang(h[v]['async'])} " for v in VARIANTS)
        + "| bounded by the fix's 10 s timeout |"
    )
    return rows


def prepare(work: Path) -> dict[str, Path]:
    """Copy and fix the service; check that nothing fixable remains and that fixing is stable."""
    roots = {"before": harness.copy_service(work / "before")}
    for style in harness.STYLES:
        result = harness.fix_copy(work / style, style)
        summary = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Found")]
        print(f"auditlint --fix --unsafe-fixes ({style}): {summary[-1] if summary else 'nothing to fix'}")
        roots[style] = work / style
        check = harness.auditlint(["check", "--unsafe-fixes", "--output-format", "json", "."], roots[style])
        findings = json.loads(check.stdout)
        fixable = [f for f in findings if f["fix"] is not None]
        if fixable:
            raise SystemExit(f"{style}: still fixable after --fix: {fixable}")
        left = sorted({f["code"] for f in findings})
        print(f"  nothing fixable remains; reported without a fix: {len(findings)} ({', '.join(left)})")
        before = harness.sources(roots[style])
        harness.auditlint(["--fix", "--unsafe-fixes", "."], roots[style])
        if harness.sources(roots[style]) != before:
            raise SystemExit(f"{style}: a second --fix changed the code")
        print("  a second --fix changes nothing")
    original = harness.auditlint(["check", "--output-format", "json", "."], roots["before"])
    codes = sorted({f["code"] for f in json.loads(original.stdout)})
    print(f"original: {len(json.loads(original.stdout))} findings of {len(codes)} rules ({', '.join(codes)})")
    return roots


def behaviour(roots: dict[str, Path]) -> None:
    for variant, root in roots.items():
        result = harness.run_behaviour(root if variant != "before" else harness.ORIGINAL)
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-500:]
        print(f"behaviour tests, {variant}: {last}")
        if result.returncode != 0:
            raise SystemExit(result.stdout[-4000:])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds per DB checkout and per HTTP call"
    )
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--claims", type=int, default=10)
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--reloads", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fault-every", type=int, default=5)
    parser.add_argument("--hang-cap", type=float, default=20.0, help="how long to wait for a hung call")
    parser.add_argument("--keep", type=Path, help="keep the copies in this directory")
    args = parser.parse_args(argv)
    missing = harness.unreachable()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="audit_table_"))
    work.mkdir(parents=True, exist_ok=True)
    roots = prepare(work)
    behaviour(roots)
    interval = 0.05
    plans: dict[str, dict[str, Any]] = {
        "jobs": {"orgs": args.orgs, "claims": args.claims, "latency": args.latency},
        "redelivery": {"webhooks": args.webhooks, "latency": args.latency},
        "fan_out": {"webhooks": args.webhooks, "latency": args.latency},
        "memory": {
            "reloads": args.reloads,
            "period": 2 * interval,
            "settings": {
                "initial_delay": 0,
                "poll_interval": interval,
                "refresh_interval": interval,
                "reconcile_interval": interval,
                "sweep_interval": interval,
            },
        },
        "errors": {
            "requests": args.requests,
            "wave": 10,
            "wait": 0.5,
            "settings": {"fault_every": args.fault_every, "pg_pool_size": 10},
        },
    }
    results: dict[str, dict[str, Result]] = {}
    for scenario, params in plans.items():
        results[scenario] = {}
        for variant in VARIANTS:
            results[scenario][variant] = collect(child(scenario, roots[variant], {**params, "remote": True}))
        print(f"measured {scenario}: {json.dumps(results[scenario])}")
    hung = {
        v: child("hang", roots[v], {"cap": args.hang_cap, "remote": True}) for v in VARIANTS
    }  # side by side
    results["hang"] = {v: collect(p) for v, p in hung.items()}
    print(f"measured hang: {json.dumps(results['hang'])}")
    print()
    print(
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}; {pg_version()}, Redis {redis_version()} on loopback"
    )
    print()
    print("\n".join(table(results, args)))
    print()
    fan, re_, err = results["fan_out"], results["redelivery"], results["errors"]
    print(
        "Peak concurrency at the webhook receivers (the fixes' limit is 10): fan-out "
        f"{fan['before']['peak']} before, {fan['stdlib']['peak']} / {fan['runtime']['peak']} after; redelivery "
        f"{re_['before']['peak']} before, {re_['stdlib']['peak']} / {re_['runtime']['peak']} after"
    )
    print(
        "Connections left checked out after the error run: "
        f"{err['before']['checked_out']} before, {err['stdlib']['checked_out']} / {err['runtime']['checked_out']} after"
    )
    print(f"Command: python benchmarks/audit_table.py {' '.join(sys.argv[1:])}".rstrip())
    return 0


def pg_version() -> str:
    import asyncpg

    async def ask() -> str:
        conn = await asyncpg.connect(harness.PG_DSN)
        try:
            return str(await conn.fetchval("SHOW server_version")).split()[0]
        finally:
            await conn.close()

    return f"PostgreSQL {asyncio.run(ask())}"


def redis_version() -> str:
    import redis

    client = redis.Redis.from_url(harness.REDIS_URL)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
