"""Scenarios that measure one version of the sample service in a fresh interpreter: the claim
status poll, webhook redelivery and fan-out, a time-compressed run of the jobs with reloads,
requests under injected connection faults, and an external API that never answers.

`benchmarks/audit_table.py` times them for the audit's table; `tests/test_sample_service.py`
runs the small ones for their counts (peak concurrency, connections left checked out, threads
left running), never for their timings. `python -m tests.sample_service.scenarios SCENARIO
ROOT PARAMS_JSON` prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Union

from tests.sample_service import harness
from tests.sample_service.stubs import RemoteStub, StubServer

Result = dict[str, Any]


class Session:
    """One measurement: a stub HTTP server, a schema and key prefix of its own, and the service
    of `root` imported with that configuration."""

    def __init__(self, root: Path, remote: bool, **settings: object) -> None:
        self.root = root
        self.stub: Union[StubServer, RemoteStub]
        if remote:
            self.stub = RemoteStub()
        else:
            self.stub = StubServer()
            self.stub.start()
        self.schema = harness.unique_name("bench")
        os.environ.update(harness.service_env(self.schema, self.schema, self.stub.url, **settings))
        sys.path.insert(0, str(root))
        from billing import config, db

        assert Path(config.__file__).resolve().is_relative_to(root.resolve())
        self.config = config
        asyncio.run(harness.create_schema(self.schema, db.SCHEMA_SQL))


async def _worker() -> Any:
    from billing.app import BillingWorker

    return await BillingWorker().start(run_jobs=False)


async def _deliver(s: Session, deliver: Callable[[Any], Awaitable[list[int]]]) -> Result:
    """Time one delivery run of a fresh worker: seconds, receivers that answered 200, and the
    most requests the receivers saw at once."""
    worker = await _worker()
    try:
        start = time.perf_counter()
        statuses = await deliver(worker)
        seconds = time.perf_counter() - start
    finally:
        await worker.stop()
    return {
        "seconds": seconds,
        "delivered": sum(1 for x in statuses if x == 200),
        "peak": s.stub.peak("hooks"),
    }


async def measure_jobs(s: Session, orgs: int, claims: int, latency: float) -> Result:
    """The claim status poll: N organisations x M claims, one latency per DB checkout and per
    clearing-house request."""
    made = await harness.seed(s.schema, orgs, claims, tag="job")
    paid = {f"job-{o}-{n}" for o in range(orgs) for n in range(claims) if (o + n) % 3 == 0}
    s.stub.configure(claim_statuses=dict.fromkeys(paid, "paid"), api_latency=latency)
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
    s.stub.configure(hook_latency=latency)
    pending = [
        ({"id": n, "url": f"{s.stub.url}/hooks/r{n}"}, {"id": f"evt-{n}", "type": "claim.updated"})
        for n in range(webhooks)
    ]
    return await _deliver(s, lambda worker: worker.webhooks.redeliver(pending))


async def measure_fan_out(s: Session, webhooks: int, latency: float) -> Result:
    """One event to the webhooks of an organisation, one latency per receiver."""
    made = await harness.seed(s.schema, 1, 1, tag="fan", webhooks_per_org=webhooks, hook_url=s.stub.url)
    s.stub.configure(hook_latency=latency)
    event = {
        "id": "evt-fan",
        "type": "claim.updated",
        "org_id": made["orgs"][0],
        "claim": {"id": made["claims"][0]},
    }
    return await _deliver(s, lambda worker: worker.webhooks.dispatch(event))


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
        for _ in range(500):
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
    base = _census()
    for _ in range(reloads):
        await _shut_down_jobs(worker)
        worker.reload_jobs()
        await asyncio.sleep(period)
    end = _census()
    return {
        "rss_growth": end["rss"] - base["rss"],
        **{key: (base[key], end[key]) for key in ("threads", "tasks", "reconcile_threads", "refresh_tasks")},
    }


def _census() -> dict[str, Any]:
    """What is alive: memory, threads and tasks, and the job threads and tasks by name."""
    tasks = asyncio.all_tasks()
    return {
        "rss": _rss_mib(),
        "threads": threading.active_count(),
        "tasks": len(tasks),
        "reconcile_threads": sum(1 for t in threading.enumerate() if t.name == "reconcile"),
        "refresh_tasks": sum(
            1 for t in tasks if getattr(t.get_coro(), "__qualname__", "").endswith("_refresh_forever")
        ),
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
        calls = (
            repo.list_organisations,
            lambda: repo.pending_claims(org),
            lambda: repo.get_claim(made["claims"][n % 16]),
        )
        try:
            await asyncio.wait_for(calls[n % 3](), wait)
        except asyncio.TimeoutError:
            return "stuck"
        except s.config.InjectedFault:
            return "fault"
        return "ok"

    try:
        numbers = list(range(requests))
        for start in range(0, requests, wave):
            for outcome in await asyncio.gather(*(one(n) for n in numbers[start : start + wave])):
                ok += outcome == "ok"
                faults += outcome == "fault"
                stuck += outcome == "stuck"
            await repo.cache.delete(*[s.config.cache_key("claim", c) for c in made["claims"]])
        checked_out = repo.checked_out()
        size = repo.pool.get_max_size()
    finally:
        worker.jobs.stop()
    return {"ok": ok, "faults": faults, "stuck": stuck, "checked_out": checked_out, "pool": size}


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
    return dict(outcome)  # a copy: the thread may still answer once the stub stops


def run_measurement(scenario: str, root: Path, params: dict[str, Any]) -> None:
    """Entry point of the child interpreter: print one JSON line, then leave. The original's
    jobs and hung calls cannot be stopped, so the child ends with `os._exit`, and `collect`
    drops its schema once it has gone (and its connections with it)."""
    settings = params.pop("settings", {})
    session = Session(root, params.pop("remote", False), **settings)
    measures: dict[str, Callable[..., Awaitable[Result]]] = {
        "jobs": measure_jobs,
        "redelivery": measure_redelivery,
        "fan_out": measure_fan_out,
        "memory": measure_memory,
        "errors": measure_errors,
        "hang": measure_hang,
    }
    loop = asyncio.new_event_loop()
    result = loop.run_until_complete(measures[scenario](session, **params))
    if isinstance(session.stub, RemoteStub):
        session.stub.stop()
    print(json.dumps({**result, "schema": session.schema}), flush=True)
    os._exit(0)


def child(scenario: str, root: Path, params: dict[str, Any]) -> subprocess.Popen[str]:
    """Start one measurement of one version in a fresh interpreter."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sample_service.scenarios", scenario, str(root), json.dumps(params)],
        cwd=harness.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )


def collect(proc: subprocess.Popen[str], timeout: float = 300) -> Result:
    """The JSON line a measurement printed."""
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"measurement failed ({proc.args!r}):\n{out[-2000:]}\n{err[-4000:]}")
    result: Result = json.loads(lines[-1])
    schema = result.pop("schema")
    asyncio.run(harness.drop_schema(schema))
    harness.flush_prefix(schema)
    return result


if __name__ == "__main__":
    run_measurement(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]))
