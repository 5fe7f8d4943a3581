"""Behaviour tests of the sample service (`fixtures/sample_service`), against PostgreSQL and
Redis on loopback and the stub HTTP server. They test what the service does, which must not
change when auditlint fixes it: `tests/test_sample_service.py` runs them on the original and on
the copies fixed in both styles, each in a fresh interpreter with `SAMPLE_SERVICE_ROOT` naming
the copy. Run by hand: `SAMPLE_SERVICE_ROOT=fixtures/sample_service pytest tests/sample_service/behaviour.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sample_service import harness
from tests.sample_service.stubs import StubServer

SERVICE_ROOT = Path(os.environ.get("SAMPLE_SERVICE_ROOT", str(harness.ORIGINAL))).resolve()

_missing = harness.unreachable()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

sys.path.insert(0, str(SERVICE_ROOT))
from billing import config  # noqa: E402  (the service under test is found through SAMPLE_SERVICE_ROOT)
from billing.app import BillingWorker  # noqa: E402

assert Path(config.__file__).resolve().is_relative_to(SERVICE_ROOT), config.__file__


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    server = StubServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(stub: StubServer) -> Iterator[dict[str, str]]:
    """A schema and a key prefix of this run, and the service configured to use them."""
    schema = harness.unique_name("svc")
    env = harness.service_env(schema, schema, stub.url, initial_delay=0.01)
    os.environ.update(env)
    config.configure(**vars(config.BillingSettings.from_env()))
    from billing.db import SCHEMA_SQL

    asyncio.run(harness.create_schema(schema, SCHEMA_SQL))
    yield env
    asyncio.run(harness.drop_schema(schema))
    harness.flush_prefix(schema)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _worker() -> BillingWorker:
    return await BillingWorker().start(run_jobs=False)


async def _claims(worker: BillingWorker, ids: list[int]) -> dict[str, str]:
    async with worker.repo.pool.acquire() as conn:
        rows = await conn.fetch("SELECT claim_number, status FROM claims WHERE id = ANY($1::int[])", ids)
    return {r["claim_number"]: r["status"] for r in rows}


def test_poll_stores_the_status_the_clearing_house_answers(service: dict[str, str], stub: StubServer) -> None:
    made = _run(harness.seed(service["BILLING_PG_SCHEMA"], 3, 4, tag="poll"))
    stub.claim_statuses.update({"poll-0-1": "paid", "poll-1-0": "denied", "poll-2-3": "paid"})
    stub.reset()

    async def scenario() -> dict[str, str]:
        worker = await _worker()
        try:
            await worker.poller.poll_all()
            return await _claims(worker, made["claims"])
        finally:
            await worker.stop()

    statuses = _run(scenario())
    assert statuses["poll-0-1"] == "paid"
    assert statuses["poll-1-0"] == "denied"
    assert statuses["poll-2-3"] == "paid"
    assert sum(1 for s in statuses.values() if s == "pending") == 9
    assert {n: stub.asked[n] for n in statuses} == {n: 1 for n in statuses}


def test_claim_reads_are_cached_and_single_updates_invalidate(service: dict[str, str]) -> None:
    made = _run(harness.seed(service["BILLING_PG_SCHEMA"], 1, 1, tag="cache"))
    claim_id = made["claims"][0]

    async def scenario() -> list[Any]:
        worker = await _worker()
        try:
            first = await worker.repo.get_claim(claim_id)
            cached = await worker.repo.cache.get(config.cache_key("claim", claim_id))
            await worker.repo.set_status(claim_id, "paid")
            after = await worker.repo.get_claim(claim_id)
            missing = await worker.repo.get_claim(-1)
            return [first, cached, after, missing]
        finally:
            await worker.stop()

    first, cached, after, missing = _run(scenario())
    assert first["status"] == "pending" and first["claim_number"] == "cache-0-0"
    assert json.loads(cached) == first
    assert after["status"] == "paid"
    assert missing is None


def test_bulk_status_update_writes_every_claim(service: dict[str, str]) -> None:
    made = _run(harness.seed(service["BILLING_PG_SCHEMA"], 1, 5, tag="bulk"))

    async def scenario() -> dict[str, str]:
        worker = await _worker()
        try:
            await worker.repo.update_statuses([(cid, "paid") for cid in made["claims"][:3]])
            return await _claims(worker, made["claims"])
        finally:
            await worker.stop()

    statuses = _run(scenario())
    assert sorted(statuses.values()) == ["paid", "paid", "paid", "pending", "pending"]


def test_dispatch_posts_the_signed_event_to_every_webhook(service: dict[str, str], stub: StubServer) -> None:
    made = _run(
        harness.seed(service["BILLING_PG_SCHEMA"], 1, 1, tag="hook", webhooks_per_org=12, hook_url=stub.url)
    )
    event = {
        "id": "evt-1",
        "type": "claim.updated",
        "org_id": made["orgs"][0],
        "claim": {"id": made["claims"][0]},
    }
    stub.reset()

    async def scenario() -> tuple[list[int], list[Any], list[Any]]:
        worker = await _worker()
        try:
            statuses = await worker.webhooks.dispatch(event)
            await asyncio.sleep(0)  # the audit entry is written by a task of its own
            async with worker.repo.pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT webhook_id, status, payload FROM webhook_deliveries WHERE event_id = 'evt-1' ORDER BY webhook_id"
                )
            return statuses, [tuple(r) for r in rows], list(worker.webhooks.audit_log)
        finally:
            await worker.stop()

    statuses, rows, audit = _run(scenario())
    assert statuses == [200] * 12
    assert sorted(d.hook for d in stub.deliveries) == sorted(str(h) for h in made["webhooks"])
    for delivery in stub.deliveries:
        assert json.loads(delivery.body) == event
        expected = hmac.new(b"whsec-billing", delivery.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery.signature, expected)
    assert [r[0] for r in rows] == sorted(made["webhooks"])
    assert all(r[1] == 200 and json.loads(r[2]) == event for r in rows)
    assert audit == [("evt-1", 12, 12)]


def test_redeliver_sends_each_pending_delivery(service: dict[str, str], stub: StubServer) -> None:
    hooks = [{"id": n, "url": f"{stub.url}/hooks/re{n}"} for n in range(7)]
    pending = [(hook, {"id": f"evt-re-{hook['id']}", "type": "claim.updated"}) for hook in hooks]
    stub.reset()

    async def scenario() -> list[int]:
        worker = await _worker()
        try:
            return list(await worker.webhooks.redeliver(pending))
        finally:
            await worker.stop()

    assert _run(scenario()) == [200] * 7
    bodies = {d.hook: json.loads(d.body) for d in stub.deliveries}
    assert bodies == {f"re{n}": {"id": f"evt-re-{n}", "type": "claim.updated"} for n in range(7)}


def test_reconcile_books_one_payment_per_paid_claim(service: dict[str, str]) -> None:
    made = _run(harness.seed(service["BILLING_PG_SCHEMA"], 1, 4, tag="pay"))
    org_id = made["orgs"][0]

    async def scenario() -> tuple[int, int, int, int]:
        worker = await _worker()
        try:
            await worker.repo.update_statuses([(cid, "paid") for cid in made["claims"][:2]])
            booked = worker.ledger.reconcile()
            again = worker.ledger.reconcile()
            total = worker.ledger.total_paid(org_id)
            purged = worker.ledger.purge_deliveries(days=30)
            return booked, again, total, purged
        finally:
            await worker.stop()

    booked, again, total, purged = _run(scenario())
    assert booked >= 2  # paid claims of other tests in this schema are booked too
    assert again == 0
    assert total == 1000 + 1001
    assert purged == 0


def test_patient_controller_reads_updates_and_searches(service: dict[str, str]) -> None:
    made = _run(harness.seed(service["BILLING_PG_SCHEMA"], 2, 1, tag="pat"))
    from billing.controllers import patient_controller

    first, second = made["patients"]
    assert patient_controller.get_patient(first)["name"] == "Patient pat 0"
    assert patient_controller.get_patient(first)["mrn"] == "pat-mrn-0"
    patient_controller.update_patient({"id": first, "name": "Ada Lovelace"})
    assert patient_controller.get_patient(first)["name"] == "Ada Lovelace"
    assert patient_controller.bulk_rename([{"id": second, "name": "Grace Hopper"}]) == 1
    patient_controller.refresh_search()
    assert [p["id"] for p in patient_controller.search("hopper")] == [second]
    assert [p["name"] for p in patient_controller.search("lovelace")] == ["Ada Lovelace"]
    assert patient_controller.get_patient(-1) is None


def test_claims_client_reads_statuses_and_submits(service: dict[str, str], stub: StubServer) -> None:
    from billing.claims_api import ClaimsApiClient, ClaimsApiError
    from billing.controllers import claims_client

    stub.claim_statuses["sync-1"] = "paid"
    assert claims_client.get_claim_status("sync-1") == {"claim_number": "sync-1", "status": "paid"}
    assert claims_client.submit_claim({"claim_number": "sync-2", "amount_cents": 5}) == {
        "accepted": True,
        "claim_number": "sync-2",
    }
    assert stub.submitted[-1] == {"claim_number": "sync-2", "amount_cents": 5}
    broken = ClaimsApiClient(base_url=f"{stub.url}/missing")
    with pytest.raises(ClaimsApiError):
        broken.get_claim_status("sync-1")
    broken.close()


def test_refresh_search_cache_shows_new_patients(service: dict[str, str]) -> None:
    made = _run(harness.seed(service["BILLING_PG_SCHEMA"], 1, 2, tag="view"))

    async def scenario() -> list[Any]:
        worker = await _worker()
        try:
            await worker.repo.refresh_search_cache()
            async with worker.repo.pool.acquire() as conn:
                return list(
                    await conn.fetch(
                        "SELECT id, claims FROM patient_search_cache WHERE id = $1", made["patients"][0]
                    )
                )
        finally:
            await worker.stop()

    assert [tuple(r) for r in _run(scenario())] == [(made["patients"][0], 2)]


JOBS_SCRIPT = """
import asyncio, json, os, sys
sys.path.insert(0, os.environ["SAMPLE_SERVICE_ROOT"])
from billing.app import BillingWorker

async def main():
    worker = await BillingWorker().start()
    for _ in range(500):
        if min(worker.jobs.runs.values()) >= 2:
            break
        await asyncio.sleep(0.02)
    print(json.dumps(worker.jobs.runs), flush=True)

loop = asyncio.new_event_loop()
loop.run_until_complete(main())
# The original's jobs cannot be stopped (that is what the fixes change): leave at once.
os._exit(0)
"""


def test_every_job_runs_on_its_schedule(service: dict[str, str]) -> None:
    intervals = {
        "BILLING_INITIAL_DELAY": "0.01",
        "BILLING_POLL_INTERVAL": "0.02",
        "BILLING_REFRESH_INTERVAL": "0.02",
        "BILLING_RECONCILE_INTERVAL": "0.02",
        "BILLING_SWEEP_INTERVAL": "0.02",
    }
    env = {**os.environ, **service, **intervals, "SAMPLE_SERVICE_ROOT": str(SERVICE_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(JOBS_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(runs) == {"poll", "refresh", "reconcile", "sweep"}
    assert min(runs.values()) >= 2, runs
