"""metrics: counters, gauges and summaries, snapshots, reset, and the optional Prometheus export."""

from __future__ import annotations

import json
import threading

import pytest

from auditlint.runtime import Metrics


def test_counters_gauges_and_summaries() -> None:
    m = Metrics()
    m.inc("jobs.runs", labels={"job": "billing"})
    m.inc("jobs.runs", 2, labels={"job": "billing"})
    m.inc("plain")
    m.add_gauge("pool.in_use", 3)
    m.add_gauge("pool.in_use", -1)
    m.max_gauge("bounded.inflight_peak", 5)
    m.max_gauge("bounded.inflight_peak", 2)
    for value in (0.5, 0.1, 0.3):
        m.observe("jobs.duration_seconds", value)
    with m.time("block_seconds"):
        pass

    snap = m.snapshot()
    json.dumps(snap)  # plain data
    assert snap["counters"] == {'jobs.runs{job="billing"}': 3.0, "plain": 1.0}
    assert snap["gauges"] == {"pool.in_use": 2.0, "bounded.inflight_peak": 5.0}
    summary = snap["summaries"]["jobs.duration_seconds"]
    assert summary["count"] == 3 and summary["max"] == 0.5 and summary["min"] == 0.1
    assert summary["last"] == 0.3 and summary["mean"] == pytest.approx(0.3)
    assert snap["summaries"]["block_seconds"]["count"] == 1
    assert m.counter("jobs.runs", {"job": "billing"}) == 3
    assert m.summary("missing").count == 0

    m.reset()
    assert m.snapshot() == {"counters": {}, "gauges": {}, "summaries": {}}


def test_in_use_tracking_keeps_a_peak_and_is_thread_safe() -> None:
    m = Metrics()

    def churn() -> None:
        for _ in range(2_000):
            m.track_in_use("pool.in_use", 1)
            m.track_in_use("pool.in_use", -1)
            m.inc("hits")

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert m.gauge("pool.in_use") == 0
    assert 1 <= m.gauge("pool.in_use_peak") <= 8
    assert m.counter("hits") == 16_000


def test_prometheus_export() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from auditlint.runtime import export_prometheus

    m = Metrics()
    m.inc("jobs.runs", labels={"job": "billing"})
    m.add_gauge("pool.in_use", 2)
    m.observe("jobs.duration_seconds", 0.25, labels={"job": "billing"})
    registry = prometheus_client.CollectorRegistry()
    collector = export_prometheus(registry, source=m)
    text = prometheus_client.generate_latest(registry).decode()
    assert 'auditlint_jobs_runs_total{job="billing"} 1.0' in text
    assert "auditlint_pool_in_use 2.0" in text
    assert 'auditlint_jobs_duration_seconds_count{job="billing"} 1.0' in text
    assert 'auditlint_jobs_duration_seconds_max{job="billing"} 0.25' in text
    registry.unregister(collector)
