"""What the auditlint.runtime helpers cost next to the code they replace.

Run `python benchmarks/bench_runtime.py`; it prints one table of timings and ratios:
bounded fan-out against `asyncio.gather` (time per task and peak memory for 100,000 items),
`lazy` attribute access against a plain object, and `json_clone` against the JSON round trip
and `copy.deepcopy` on realistic payloads. Not a test: figures depend on the machine.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import sys
import time
import timeit
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditlint.runtime import gather_bounded, json_clone, lazy, map_bounded  # noqa: E402 - after the path tweak

Row = tuple[str, str, str]


async def _tick(x: int) -> int:
    await asyncio.sleep(0)
    return x


def _best_async(make: Callable[[], Awaitable[Any]], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        asyncio.run(make())  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    return best


def bench_fanout(n: int = 20_000) -> list[Row]:
    async def gather() -> None:
        await asyncio.gather(*(_tick(i) for i in range(n)))

    async def bounded_gather(limit: int) -> None:
        await gather_bounded(*(_tick(i) for i in range(n)), limit=limit)

    async def bounded_map(limit: int) -> None:
        await map_bounded(_tick, range(n), limit=limit)

    base = _best_async(gather)
    rows: list[Row] = [(f"asyncio.gather, {n:,} tasks", f"{base / n * 1e6:.2f} us/task", "1.00x")]
    for limit in (100, n):
        for label, run in (("gather_bounded", bounded_gather), ("map_bounded", bounded_map)):
            took = _best_async(lambda run=run, limit=limit: run(limit))  # type: ignore[misc]
            rows.append((f"{label}, limit={limit:,}", f"{took / n * 1e6:.2f} us/task", f"{took / base:.2f}x"))
    return rows


def _peak(make: Callable[[], Awaitable[Any]]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        asyncio.run(make())  # type: ignore[arg-type]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_memory(n: int = 100_000) -> list[Row]:
    async def gather() -> None:
        await asyncio.gather(*(_tick(i) for i in range(n)))

    async def bounded() -> None:
        await map_bounded(_tick, range(n), limit=100)

    base = _peak(gather)
    bounded_peak = _peak(bounded)
    return [
        (f"asyncio.gather peak memory, {n:,} items", f"{base / 2**20:.1f} MiB", "1.00x"),
        (
            f"map_bounded(limit=100) peak memory, {n:,} items",
            f"{bounded_peak / 2**20:.1f} MiB",
            f"{bounded_peak / base:.3f}x",
        ),
    ]


class Client:
    def __init__(self) -> None:
        self.timeout = 10

    def ping(self) -> int:
        return self.timeout


def bench_lazy() -> list[Row]:
    plain = Client()
    proxy = lazy(Client)
    number = 1_000_000
    rows: list[Row] = []
    for label, stmt in (("attribute", "c.timeout"), ("method call", "c.ping()")):
        base = min(timeit.repeat(stmt, globals={"c": plain}, number=number, repeat=5)) / number
        took = min(timeit.repeat(stmt, globals={"c": proxy}, number=number, repeat=5)) / number
        rows.append((f"plain object, {label}", f"{base * 1e9:.0f} ns", "1.00x"))
        rows.append((f"lazy proxy, {label}", f"{took * 1e9:.0f} ns", f"{took / base:.2f}x"))
    return rows


def webhook_payload() -> dict[str, Any]:
    """A claim-status webhook as the audited service sends it: nested, a few KB."""
    lines = [
        {
            "line": i,
            "code": "99213",
            "modifiers": ["25", "59"],
            "units": 1,
            "charge": 125.5 + i,
            "diagnoses": ["E11.9", "I10"],
            "adjudication": {
                "allowed": 98.12,
                "paid": 78.5,
                "adjustments": [{"group": "CO", "reason": "45", "amount": 27.38}],
            },
        }
        for i in range(12)
    ]
    return {
        "id": "evt_01HX8ZQ",
        "type": "claim.status_changed",
        "created": 1734393600,
        "livemode": True,
        "data": {
            "claim": {
                "id": "clm_5531",
                "status": "accepted",
                "payer": {"id": "62308", "name": "Example Health Plan"},
                "patient": {
                    "id": "pat-000042",
                    "name": {"family": "Doe", "given": ["Jane", "Q."]},
                    "birthDate": "1980-01-01",
                    "address": {"line": ["1 Main St"], "city": "Springfield", "postalCode": "12345"},
                },
                "lines": lines,
                "totals": {"charge": 1506.0, "allowed": 1177.44, "paid": 942.0},
                "flags": {"resubmission": False, "urgent": None},
            }
        },
        "meta": {"attempt": 1, "tags": ["billing", "claims", "webhook"]},
    }


def records(n: int = 1_000) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "mrn": f"MRN{i:07d}",
            "active": i % 5 != 0,
            "score": i * 0.75,
            "tags": ["outpatient", "cardiology"],
            "address": {"city": "Springfield", "zip": f"{10000 + i}"},
            "updated": None,
        }
        for i in range(n)
    ]


def bench_json() -> list[Row]:
    rows: list[Row] = []
    for label, data, number in (
        (f"webhook payload ({len(json.dumps(webhook_payload())):,} B)", webhook_payload(), 5_000),
        (f"1,000 records ({len(json.dumps(records())) // 1024:,} KiB)", records(), 30),
    ):
        assert json_clone(data) == json.loads(json.dumps(data))
        timings = {}
        for name, fn in (
            ("json_clone", json_clone),
            ("json.loads(json.dumps())", lambda d: json.loads(json.dumps(d))),
            ("copy.deepcopy", copy.deepcopy),
        ):
            timings[name] = (
                min(timeit.repeat(lambda fn=fn, data=data: fn(data), number=number, repeat=5)) / number
            )
        clone = timings["json_clone"]
        for name, took in timings.items():
            rows.append((f"{label}: {name}", f"{took * 1e6:.1f} us", f"{took / clone:.2f}x"))
    return rows


def main() -> None:
    sections = (
        ("fan-out (ratio to asyncio.gather)", bench_fanout),
        ("memory (ratio to asyncio.gather)", bench_memory),
        ("lazy (ratio to a plain object)", bench_lazy),
        ("json copies (ratio to json_clone)", bench_json),
    )
    print(f"Python {sys.version.split()[0]} on {sys.platform}")
    width = 58
    for title, bench in sections:
        print(f"\n{title}")
        print(f"  {'case':<{width}} {'time / size':>14} {'ratio':>8}")
        for case, value, ratio in bench():
            print(f"  {case:<{width}} {value:>14} {ratio:>8}")


if __name__ == "__main__":
    main()
