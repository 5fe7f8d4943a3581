"""Every rule: one table of codes, names and modules; selection by code or prefix.

The table is static so that selection, validation and cache keys never import LibCST; a rule
module is imported only when a file needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from auditlint.rule import Rule

#: code -> (name, module, class). Keep sorted by code.
RULES: dict[str, tuple[str, str, str]] = {
    "AL101": ("dangling-task", "auditlint.rules.al101_dangling_task", "DanglingTask"),
    "AL102": ("untracked-timer", "auditlint.rules.al102_untracked_timer", "UntrackedTimer"),
    "AL103": ("unstoppable-loop", "auditlint.rules.al103_unstoppable_loop", "UnstoppableLoop"),
    "AL201": ("await-in-loop", "auditlint.rules.al201_await_in_loop", "AwaitInLoop"),
    "AL202": ("unbounded-fan-out", "auditlint.rules.al202_unbounded_fan_out", "UnboundedFanOut"),
    "AL203": ("query-in-loop", "auditlint.rules.al203_query_in_loop", "QueryInLoop"),
    "AL301": ("unreleased-connection", "auditlint.rules.al301_unreleased_connection", "UnreleasedConnection"),
    "AL401": ("http-without-timeout", "auditlint.rules.al401_http_without_timeout", "HttpWithoutTimeout"),
    "AL501": ("import-time-singleton", "auditlint.rules.al501_import_time_singleton", "ImportTimeSingleton"),
    "AL601": ("json-round-trip", "auditlint.rules.al601_json_round_trip", "JsonRoundTrip"),
    "AL602": ("json-in-loop", "auditlint.rules.al602_json_in_loop", "JsonInLoop"),
    "AL603": ("repeated-serialization", "auditlint.rules.al603_repeated_serialization", "RepeatedSerialization"),
    "AL701": ("bulk-write-without-invalidation", "auditlint.rules.al701_bulk_write_without_invalidation", "BulkWriteWithoutInvalidation"),
    "AL801": ("blocking-matview-refresh", "auditlint.rules.al801_blocking_matview_refresh", "BlockingMatviewRefresh"),
}

ALL_SELECTORS = ("ALL",)


class SelectorError(ValueError):
    """A selector that names no rule."""


def check_selector(selector: str) -> None:
    if selector in ALL_SELECTORS:
        return
    if not any(code.startswith(selector) for code in RULES) or not selector.startswith("AL"):
        raise SelectorError(f"unknown rule selector `{selector}`")


def _best(code: str, selectors: Iterable[str]) -> int:
    best = -1
    for sel in selectors:
        if sel in ALL_SELECTORS:
            best = max(best, 0)
        elif code.startswith(sel):
            best = max(best, len(sel))
    return best


def select_codes(select: Sequence[str], ignore: Sequence[str], extend_select: Sequence[str] = ()) -> list[str]:
    """Codes enabled by the selectors; the most specific selector wins, ignore wins a tie."""
    enabled = []
    positive = [*select, *extend_select]
    for code in RULES:
        on = _best(code, positive)
        off = _best(code, ignore)
        if on >= 0 and on > off:
            enabled.append(code)
    return enabled


_CLASSES: dict[str, type[Rule]] = {}


def rule_class(code: str) -> type[Rule]:
    cls = _CLASSES.get(code)
    if cls is None:
        _, module, attr = RULES[code]
        cls = getattr(importlib.import_module(module), attr)
        _CLASSES[code] = cls
    return cls


def all_rule_classes() -> list[type[Rule]]:
    return [rule_class(code) for code in RULES]


def rule_name(code: str) -> str:
    return RULES[code][0]


def lookup(code_or_name: str) -> str:
    """The code for a code or a rule name; raises KeyError."""
    key = code_or_name.strip()
    if key.upper() in RULES:
        return key.upper()
    for code, (name, _, _) in RULES.items():
        if name == key:
            return code
    raise KeyError(code_or_name)
