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
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.sample_service import harness  # noqa: E402 - after the path tweak
from tests.sample_service.stubs import StubServer  # noqa: E402

VARIANTS = ("before", "stdlib", "runtime")
Result = dict[str, Any]


# ---- measurements, each run in a fresh interpreter with one version of the service --------------


class Session:
    """One measurement: a stub HTTP server, a schema and key prefix of its own, and the service
    of `root` imported with that configuration."""

    def __init__(self, root: Path, **settings: object) -> None:
        self.root = root
        self.stub = StubServer()
        self.stub.start()
        self.schema = harness.unique_name("bench")
        os.environ.update(harness.service_env(self.schema, self.schema, self.stub.url, **settings))
        sys.path.insert(0, str(root))
        from billing import config, db

        assert Path(config.__file__).resolve().is_relative_to(root.resolve())
        self.config = config
        asyncio.run(harness.create_schema(self.schema, db.SCHEMA_SQL))

    def close(self) -> None:
        asyncio.run(harness.drop_schema(self.schema))
        harness.flush_prefix(self.schema)
        self.stub.stop()


async def _worker() -> Any:
    from billing.app import BillingWorker

    return await BillingWorker().start(run_jobs=False)


async def measure_jobs(s: Session, orgs: int, claims: int, latency: float) -> Result:
    """The claim status poll: N organisations x M claims, one latency per DB checkout and per
    clearing-house request."""
    made = await harness.seed(s.schema, orgs, claims, tag="job")
    paid = {f"job-{o}-{n}" for o in range(orgs) for n in range(claims) if (o + n) % 3 == 0}
    s.stub.claim_statuses.update(dict.fromkeys(paid, "paid"))
    s.stub.api_latency = latency
    s.config.configure(db_latency=latency)
    worker = await _worker()
    try:
        start = time.perf_counter()
        await worker.poller.poll_all()
        seconds = time.perf_counter() - start
        async with worker.repo.pool.acquire() as conn:
            updated = await conn.fetchval(
                "SELECT count(*) FROM claims WHERE status = 'paid' AND id = ANY($1::int[])", made["claims"]
            )
    finally:
        await worker.stop()
    return {"seconds": seconds, "updated": updated, "expected": len(paid), "api_peak": s.stub.peak("api")}


async def measure_redelivery(s: Session, webhooks: int, latency: float) -> Result:
    """Redelivery of a queue of failed webhooks, one latency per receiver."""
    s.stub.hook_latency = latency
    pending = [
        ({"id": n, "url": f"{s.stub.url}/hooks/r{n}"}, {"id": f"evt-{n}", "type": "claim.updated"})
        for n in range(webhooks)
    ]
    worker = await _worker()
    try:
        start = time.perf_counter()
        statuses = await worker.webhooks.redeliver(pending)
        seconds = time.perf_counter() - start
    finally:
        await worker.stop()
    return {"seconds": seconds, "delivered": sum(1 for x in statuses if x == 200), "peak": s.stub.peak("hooks")}


async def measure_fan_out(s: Session, webhooks: int, latency: float) -> Result:
    """One event to the webhooks of an organisation, one latency per receiver."""
    made = await harness.seed(s.schema, 1, 1, tag="fan", webhooks_per_org=webhooks, hook_url=s.stub.url)
    s.stub.hook_latency = latency
    event = {"id": "evt-fan", "type": "claim.updated", "org_id": made["orgs"][0], "claim": {"id": made["claims"][0]}}
    worker = await _worker()
    try:
        start = time.perf_counter()
        statuses = await worker.webhooks.dispatch(event)
        seconds = time.perf_counter() - start
    finally:
        await worker.stop()
    return {"seconds": seconds, "delivered": sum(1 for x in statuses if x == 200), "peak": s.stub.peak("hooks")}


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _fix_handles() -> Iterator[Any]:
    """What the fixed code keeps so the jobs can be stopped: the stop events and handle sets the
    stdlib fixes declare in the service's modules, and the runtime registry."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("billing"):
            continue
        for attr, value in vars(module).items():
            if attr.startswith("_stop_") and isinstance(value, threading.Event):
                yield value
            elif attr in ("_timers", "_timer_handles", "_background_tasks"):
                yield value
    registry = sys.modules.get("auditlint.runtime.registry")
    if registry is not None:
        yield registry.default_registry


async def _shut_down_jobs(worker: Any) -> None:
    """`BillingJobs.stop()`, then what a user adds to it once the fixes exist: set the stop
    events, cancel the kept timers and tasks (a timer firing just then re-arms once more, hence
    the rounds), wait for the stopped threads, re-arm the events for the next start."""
    worker.jobs.stop()
    handles = list(_fix_handles())
    events = [h for h in handles if isinstance(h, threading.Event)]
    for _ in range(5):
        for handle in handles:
            if isinstance(handle, threading.Event):
                handle.set()
            elif hasattr(handle, "cancel_all"):
                handle.cancel_all()
            else:
                for item in list(handle):
                    item.cancel()
        await asyncio.sleep(0.01)
    if events:
        for _ in range(200):
            if not any(t.name == "reconcile" for t in threading.enumerate()):
                break
            await asyncio.sleep(0.01)
        for event in events:
            event.clear()


async def measure_memory(s: Session, reloads: int, period: float) -> Result:
    """A time-compressed run of the jobs with a reload (stop, start) every `period` seconds."""
    await harness.seed(s.schema, 2, 3, tag="mem")
    worker = await _worker()
    worker.jobs.start()
    await asyncio.sleep(period)
    base = {"rss": _rss_mib(), "threads": threading.active_count(), "tasks": len(asyncio.all_tasks())}
    samples = []
    for _ in range(reloads):
        await _shut_down_jobs(worker)
        worker.reload_jobs()
        await asyncio.sleep(period)
        samples.append(
            {"rss": _rss_mib(), "threads": threading.active_count(), "tasks": len(asyncio.all_tasks())}
        )
    end = samples[-1]
    return {
        "rss_growth": end["rss"] - base["rss"],
        "threads": (base["threads"], end["threads"]),
        "tasks": (base["tasks"], end["tasks"]),
        "runs": dict(worker.jobs.runs),
        "exit": "leave",
    }


async def measure_errors(s: Session, requests: int, wave: int, wait: float) -> Result:
    """Requests that take a connection while every n-th checkout fails; a request that waits
    `wait` seconds for a connection counts as stuck."""
    made = await harness.seed(s.schema, 4, 4, tag="err")
    worker = await _worker()
    repo = worker.repo
    ok = faults = stuck = 0

    async def one(n: int) -> str:
        org = made["orgs"][n % len(made["orgs"])]
        calls = (repo.list_organisations, lambda: repo.pending_claims(org), lambda: repo.get_claim(made["claims"][n % 16]))
        try:
            await asyncio.wait_for(calls[n % 3](), wait)
        except asyncio.TimeoutError:
            return "stuck"
        except s.config.InjectedFault:
            return "fault"
        return "ok"

    try:
        for start in range(0, requests, wave):
            for outcome in await asyncio.gather(*(one(n) for n in range(start, min(start + wave, requests)))):
                ok += outcome == "ok"
                faults += outcome == "fault"
                stuck += outcome == "stuck"
            await repo.cache.delete(*[s.config.cache_key("claim", c) for c in made["claims"]])
        checked_out = repo.checked_out()
        size = repo.pool.get_max_size()
    finally:
        worker.jobs.stop()
    return {"ok": ok, "faults": faults, "stuck": stuck, "checked_out": checked_out, "pool": size, "exit": "leave"}


async def measure_hang(s: Session, cap: float) -> Result:
    """A clearing house that accepts the request and never answers, through both clients."""
    from billing.claims_api import AsyncClaimsApiClient, ClaimsApiClient

    outcome: dict[str, Any] = {}

    def blocking() -> None:
        client = ClaimsApiClient(base_url=f"{s.stub.url}/hang")
        start = time.perf_counter()
        try:
            client.get_claim_status("C-1")
            outcome["sync"] = ("answered", time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - any error ends the wait; its type is reported
            outcome["sync"] = (type(exc).__name__, time.perf_counter() - start)

    thread = threading.Thread(target=blocking, daemon=True)
    thread.start()
    client = await AsyncClaimsApiClient(base_url=f"{s.stub.url}/hang").open()
    start = time.perf_counter()
    call = asyncio.ensure_future(client.get_claim_status("C-2"))
    done, _ = await asyncio.wait({call}, timeout=cap)
    if not done:
        call.cancel()
        outcome["async"] = ("hang", time.perf_counter() - start)
    elif call.exception() is not None:
        outcome["async"] = (type(call.exception()).__name__, time.perf_counter() - start)
    else:
        outcome["async"] = ("answered", time.perf_counter() - start)
    await client.close()
    thread.join(max(0.0, cap - (time.perf_counter() - start)))
    if "sync" not in outcome:
        outcome["sync"] = ("hang", cap)
    return {**outcome, "exit": "leave"}


def run_measurement(scenario: str, root: Path, params: dict[str, Any]) -> None:
    """Entry point of the child interpreter: print one JSON line, then leave. The original's
    jobs and hung calls cannot be stopped, so the child ends with `os._exit`."""
    settings = params.pop("settings", {})
    session = Session(root, **settings)
    measure = {
        "jobs": measure_jobs,
        "redelivery": measure_redelivery,
        "fan_out": measure_fan_out,
        "memory": measure_memory,
        "errors": measure_errors,
        "hang": measure_hang,
    }[scenario]
    loop = asyncio.new_event_loop()
    result = loop.run_until_complete(measure(session, **params))
    print(json.dumps(result), flush=True)
    if result.pop("exit", None) != "leave":
        loop.close()
        session.close()
    else:
        cleanup = subprocess.Popen(  # the schema goes away even though this process cannot stop cleanly
            [sys.executable, "-c", _CLEANUP, session.schema], cwd=ROOT, env=dict(os.environ)
        )
        cleanup.wait(60)
    os._exit(0)


_CLEANUP = """
import asyncio, sys
sys.path.insert(0, ".")
from tests.sample_service import harness
asyncio.run(harness.drop_schema(sys.argv[1]))
harness.flush_prefix(sys.argv[1])
"""


def child(scenario: str, root: Path, params: dict[str, Any]) -> subprocess.Popen[str]:
    """Start one measurement of one version in a fresh interpreter."""
    return subprocess.Popen(
        [sys.executable, __file__, "--measure", scenario, "--root", str(root), "--params", json.dumps(params)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )


def collect(proc: subprocess.Popen[str], timeout: float = 300) -> Result:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"measurement failed ({proc.args}):\n{out[-2000:]}\n{err[-4000:]}")
    result: Result = json.loads(lines[-1])
    return result


# ---- the table ----------------------------------------------------------------------------------


def _ratio(before: float, after: float) -> str:
    return f"{before / after:.1f}x faster" if after > 0 else "-"


def _hang(outcome: list[Any]) -> str:
    what, seconds = outcome
    return f"no answer after {seconds:.0f} s (still waiting)" if what == "hang" else f"{what} after {seconds:.1f} s"


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per DB checkout and per HTTP call")
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--claims", type=int, default=10)
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--reloads", type=int, default=30)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fault-every", type=int, default=5)
    parser.add_argument("--hang-cap", type=float, default=20.0, help="how long to wait for a hung call")
    parser.add_argument("--keep", type=Path, help="keep the copies in this directory")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        run_measurement(args.measure, args.root, json.loads(args.params))
        return 0
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
            results[scenario][variant] = collect(child(scenario, roots[variant], dict(params)))
        print(f"measured {scenario}: {json.dumps(results[scenario])}")
    hung = {v: child("hang", roots[v], {"cap": args.hang_cap}) for v in VARIANTS}  # run side by side
    results["hang"] = {v: collect(p) for v, p in hung.items()}
    print(f"measured hang: {json.dumps(results['hang'])}")
    print()
    print(
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()}; {pg_version()}, Redis {redis_version()} on loopback"
    )
    print()
    print("\n".join(table(results, args)))
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
