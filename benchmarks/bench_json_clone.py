"""Is `auditlint.runtime.json_clone` faster than the JSON round trip and `copy.deepcopy`?

AL601 offers its (unsafe) fix to `json_clone(x)` only because this benchmark says yes on
realistic payloads. Run it with `python benchmarks/bench_json_clone.py`; it prints the best
time per copy for each payload and the ratios, then the cases where the three copies differ.
Not a test: figures depend on the machine.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditlint.runtime import json_clone  # noqa: E402 - after the path tweak above


def _patient(i: int) -> dict[str, Any]:
    """A FHIR-like patient record, the shape the audited service copies around."""
    return {
        "resourceType": "Patient",
        "id": f"pat-{i:06d}",
        "active": i % 7 != 0,
        "name": [{"use": "official", "family": f"Family{i}", "given": ["Ada", "M."]}],
        "telecom": [
            {"system": "phone", "value": f"+1-555-{i:04d}", "use": "home"},
            {"system": "email", "value": f"p{i}@example.com"},
        ],
        "gender": "female" if i % 2 else "male",
        "birthDate": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}",
        "address": [{"line": [f"{i} Main St"], "city": "Springfield", "postalCode": f"{10000 + i}"}],
        "extension": [{"url": "http://example.com/risk", "valueDecimal": (i % 100) / 7.0}],
        "meta": {"versionId": str(i % 5), "tags": ["imported", "verified"], "score": i * 1.5},
    }


def _claim(i: int) -> dict[str, Any]:
    return {
        "claim_id": i,
        "status": "submitted",
        "amount": 125.5 + i,
        "codes": ["99213", "J3490"],
        "lines": [{"line": n, "units": n + 1, "charge": 10.0 * n, "modifiers": []} for n in range(5)],
        "payer": {"id": "BCBS", "plan": None, "active": True},
    }


PAYLOADS: dict[str, Any] = {
    "small dict (webhook event, 8 keys)": {
        "event": "claim.updated",
        "id": "evt_123",
        "created": 1700000000,
        "livemode": False,
        "attempt": 1,
        "data": {"claim_id": 42, "status": "paid"},
        "tags": ["billing"],
        "ratio": 0.25,
    },
    "patient record (FHIR-like, ~60 nodes)": _patient(1),
    "claims page (50 claims)": {"page": 1, "items": [_claim(i) for i in range(50)], "next": "cursor"},
    "patient bundle (500 patients)": {"resourceType": "Bundle", "entry": [_patient(i) for i in range(500)]},
    "flat list of 1000 numbers": [i * 0.5 for i in range(1000)],
}


def _round_trip(x: Any) -> Any:
    return json.loads(json.dumps(x))


CANDIDATES: dict[str, Callable[[Any], Any]] = {
    "json round trip": _round_trip,
    "copy.deepcopy": copy.deepcopy,
    "json_clone": json_clone,
}


def _best(fn: Callable[[Any], Any], payload: Any) -> float:
    timer = timeit.Timer(lambda: fn(payload))
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number


def run_benchmark() -> dict[str, dict[str, float]]:
    """Seconds per copy, by payload and candidate."""
    results: dict[str, dict[str, float]] = {}
    for label, payload in PAYLOADS.items():
        for fn in CANDIDATES.values():
            assert fn(payload) == _round_trip(payload), label
        results[label] = {name: _best(fn, payload) for name, fn in CANDIDATES.items()}
    return results


def _describe(fn: Callable[[Any], Any], value: Any) -> str:
    try:
        return repr(fn(value))
    except Exception as exc:  # noqa: BLE001 - the point is to show which copies raise
        return f"raises {type(exc).__name__}"


DIFFERENCES: dict[str, Any] = {
    "tuple": {"point": (1, 2)},
    "int key": {1: "a"},
    "bool/None keys": {True: 1, None: 2},
    "NaN": {"x": math.nan},
    "set": {"s": {1}},
    "datetime-like object": {"when": object()},
}


def main() -> None:
    results = run_benchmark()
    print(f"Python {sys.version.split()[0]}; best of 5, microseconds per copy\n")
    header = f"{'payload':40} {'round trip':>11} {'deepcopy':>10} {'json_clone':>11}  vs trip  vs deepcopy"
    print(header)
    print("-" * len(header))
    for label, row in results.items():
        trip, deep, clone = row["json round trip"], row["copy.deepcopy"], row["json_clone"]
        print(
            f"{label:40} {trip * 1e6:11.2f} {deep * 1e6:10.2f} {clone * 1e6:11.2f}"
            f"  {trip / clone:6.1f}x  {deep / clone:9.1f}x"
        )
    print("\nWhere the copies differ:")
    for label, value in DIFFERENCES.items():
        print(f"  {label}:")
        for name, fn in CANDIDATES.items():
            print(f"    {name:16} {_describe(fn, value)}")


if __name__ == "__main__":
    main()
