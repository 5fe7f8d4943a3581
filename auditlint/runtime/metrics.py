"""In-process counters, gauges and summaries that every runtime helper records into.

`metrics` is the process-wide registry; `export_prometheus()` mirrors it into prometheus_client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["Metrics", "SummaryStats", "export_prometheus", "metrics"]

LabelItems = tuple[tuple[str, str], ...]
Key = tuple[str, LabelItems]


@dataclass(frozen=True)
class SummaryStats:
    """A read-only view of one summary: how many values, their sum, extremes and the last one."""

    count: int
    total: float
    min: float
    max: float
    last: float

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


class _Summary:
    __slots__ = ("count", "last", "max", "min", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.last = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.last = value
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def freeze(self) -> SummaryStats:
        return SummaryStats(self.count, self.total, self.min, self.max, self.last)


def _key(name: str, labels: Mapping[str, str] | None) -> Key:
    if not labels:
        return (name, ())
    return (name, tuple(sorted((k, str(v)) for k, v in labels.items())))


def _render(key: Key) -> str:
    name, labels = key
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return f"{name}{{{inner}}}"


class Metrics:
    """A thread-safe registry of named counters, gauges and summaries.

    Names are dotted (`pool.in_use`); optional labels become `name{label="value"}` in
    `snapshot()`. Summaries keep count, total, min, max and last value, never the samples, so
    memory does not grow with traffic; timings are summaries in seconds (`*_seconds`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[Key, float] = {}
        self._gauges: dict[Key, float] = {}
        self._summaries: dict[Key, _Summary] = {}

    def inc(self, name: str, value: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
        key = _key(name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + value

    def set_gauge(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        key = _key(name, labels)
        with self._lock:
            self._gauges[key] = value

    def add_gauge(self, name: str, delta: float, labels: Mapping[str, str] | None = None) -> float:
        """Move a gauge by `delta` and return its new value."""
        key = _key(name, labels)
        with self._lock:
            value = self._gauges.get(key, 0.0) + delta
            self._gauges[key] = value
            return value

    def max_gauge(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Raise a high-water-mark gauge to `value` if it is higher."""
        key = _key(name, labels)
        with self._lock:
            if value > self._gauges.get(key, float("-inf")):
                self._gauges[key] = value

    def track_in_use(self, name: str, delta: float, labels: Mapping[str, str] | None = None) -> None:
        """Move gauge `name` by `delta` and keep `name_peak` at its high-water mark, atomically."""
        key = _key(name, labels)
        peak_key = _key(name + "_peak", labels)
        with self._lock:
            value = self._gauges.get(key, 0.0) + delta
            self._gauges[key] = value
            if value > self._gauges.get(peak_key, float("-inf")):
                self._gauges[peak_key] = value

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        key = _key(name, labels)
        with self._lock:
            summary = self._summaries.get(key)
            if summary is None:
                summary = self._summaries[key] = _Summary()
            summary.add(value)

    @contextmanager
    def time(self, name: str, labels: Mapping[str, str] | None = None) -> Iterator[None]:
        """Observe the block's wall time in seconds into summary `name`, also when it raises."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.observe(name, time.perf_counter() - start, labels)

    def counter(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        with self._lock:
            return self._counters.get(_key(name, labels), 0.0)

    def gauge(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        with self._lock:
            return self._gauges.get(_key(name, labels), 0.0)

    def summary(self, name: str, labels: Mapping[str, str] | None = None) -> SummaryStats:
        with self._lock:
            summary = self._summaries.get(_key(name, labels))
            return summary.freeze() if summary is not None else SummaryStats(0, 0.0, 0.0, 0.0, 0.0)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Plain, JSON-ready data: `{"counters": {...}, "gauges": {...}, "summaries": {...}}`."""
        with self._lock:
            return {
                "counters": {_render(k): v for k, v in self._counters.items()},
                "gauges": {_render(k): v for k, v in self._gauges.items()},
                "summaries": {
                    _render(k): {
                        "count": s.count,
                        "total": s.total,
                        "min": s.min,
                        "max": s.max,
                        "mean": s.total / s.count,
                        "last": s.last,
                    }
                    for k, s in self._summaries.items()
                },
            }

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()
            self._gauges.clear()
            self._summaries.clear()

    def _raw(self) -> tuple[dict[Key, float], dict[Key, float], dict[Key, SummaryStats]]:
        with self._lock:
            return (
                dict(self._counters),
                dict(self._gauges),
                {k: s.freeze() for k, s in self._summaries.items()},
            )


metrics = Metrics()


def _prom_name(prefix: str, name: str) -> str:
    return prefix + name.replace(".", "_").replace("-", "_")


def export_prometheus(
    registry: Any = None, *, prefix: str = "auditlint_", source: Metrics | None = None
) -> Any:
    """Register a collector that exposes `source` (default: `metrics`) to prometheus_client.

    prometheus_client is imported here, on call, so the runtime never requires it. Counters
    become `<prefix><name>_total`, gauges stay gauges, and each summary becomes a Prometheus
    summary (`_count`, `_sum`) plus a `<name>_max` gauge. Returns the collector, so it can be
    unregistered with `registry.unregister(collector)`.
    """
    from prometheus_client.core import (  # type: ignore[import-not-found, unused-ignore]
        REGISTRY,
        CounterMetricFamily,
        GaugeMetricFamily,
        SummaryMetricFamily,
    )

    target = registry if registry is not None else REGISTRY
    data = source if source is not None else metrics

    def grouped(series: Mapping[Key, Any]) -> dict[str, tuple[list[str], list[tuple[LabelItems, Any]]]]:
        groups: dict[str, tuple[list[str], list[tuple[LabelItems, Any]]]] = {}
        for (name, labels), value in series.items():
            wanted, samples = groups.setdefault(name, ([], []))
            for label, _ in labels:
                if label not in wanted:
                    wanted.append(label)
            samples.append((labels, value))
        return groups

    def values(wanted: list[str], labels: LabelItems) -> list[str]:
        given = dict(labels)
        return [given.get(label, "") for label in wanted]

    class _Collector:
        def collect(self) -> Iterator[Any]:
            counters, gauges, summaries = data._raw()
            out: list[Any] = []
            for make, series in ((CounterMetricFamily, counters), (GaugeMetricFamily, gauges)):
                for name, (wanted, samples) in grouped(series).items():
                    family = make(_prom_name(prefix, name), name, labels=wanted)
                    for labels, value in samples:
                        family.add_metric(values(wanted, labels), value)
                    out.append(family)
            for name, (wanted, samples) in grouped(summaries).items():
                summary = SummaryMetricFamily(_prom_name(prefix, name), name, labels=wanted)
                peak = GaugeMetricFamily(_prom_name(prefix, name) + "_max", name + " (max)", labels=wanted)
                for labels, stats in samples:
                    summary.add_metric(values(wanted, labels), count_value=stats.count, sum_value=stats.total)
                    peak.add_metric(values(wanted, labels), stats.max)
                out.extend((summary, peak))
            return iter(out)

    collector = _Collector()
    target.register(collector)
    return collector
