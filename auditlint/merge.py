"""Combine the JSON or SARIF reports of `--shard` runs into one report.

Shards partition the files, so merging is a union: the findings (or SARIF results) of every
input, without duplicates, in the order one run over all the files would have printed them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


class MergeError(Exception):
    """An input that cannot be merged: unreadable, not a report, or of another kind."""


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MergeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise MergeError(f"{path}: not JSON: {exc}") from None


def kind_of(doc: Any) -> str:
    """`json` (an array of findings), `sarif` (a SARIF log), or MergeError."""
    if isinstance(doc, list) and all(isinstance(item, dict) and "code" in item and "path" in item for item in doc):
        return "json"
    if isinstance(doc, dict) and doc.get("version") == "2.1.0" and isinstance(doc.get("runs"), list):
        return "sarif"
    raise MergeError("not an auditlint JSON or SARIF report")


def _json_key(item: dict[str, Any]) -> tuple[str, int, int, str]:
    return (str(item.get("path", "")), int(item.get("line", 0)), int(item.get("column", 0)), str(item.get("code", "")))


def merge_json(docs: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for doc in docs:
        for item in doc:
            key = json.dumps(item, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(item)
    out.sort(key=_json_key)
    return out


def _result_key(result: dict[str, Any]) -> tuple[str, int, int, str]:
    try:
        location = result["locations"][0]["physicalLocation"]
        uri = str(location["artifactLocation"]["uri"])
        region = location.get("region", {})
        return (uri, int(region.get("startLine", 0)), int(region.get("startColumn", 0)), str(result.get("ruleId", "")))
    except (KeyError, IndexError, TypeError, ValueError):
        return ("", 0, 0, str(result.get("ruleId", "")))


def _driver(run: dict[str, Any]) -> tuple[str, str]:
    driver = run.get("tool", {}).get("driver", {})
    return (str(driver.get("name", "")), str(driver.get("version", "")))


def merge_sarif(docs: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """One run: the first input's tool and base URIs, every input's results and notifications.

    Rule indices point into the driver's rule list, so every input must come from the same
    auditlint version."""
    runs = [(name, run) for name, doc in zip(names, docs) for run in doc["runs"]]
    if not runs:
        raise MergeError("no SARIF runs to merge")
    first_name, first = runs[0]
    for name, run in runs[1:]:
        if _driver(run) != _driver(first):
            tool, version = _driver(run)
            raise MergeError(
                f"{name}: made by {tool} {version}, but {first_name} by {' '.join(_driver(first))}; "
                "merge reports of one version"
            )
    seen: set[str] = set()
    results = []
    notifications = []
    successful = True
    for _, run in runs:
        for result in run.get("results", []):
            key = json.dumps(result, sort_keys=True)
            if key not in seen:
                seen.add(key)
                results.append(result)
        for done in run.get("invocations", []):
            successful = successful and bool(done.get("executionSuccessful", True))
            notifications.extend(done.get("toolExecutionNotifications", []))
    results.sort(key=_result_key)
    merged_run = {k: v for k, v in first.items() if k not in ("results", "invocations")}
    invocation: dict[str, Any] = {"executionSuccessful": successful}
    previous = first.get("invocations") or [{}]
    if "workingDirectory" in previous[0]:
        invocation["workingDirectory"] = previous[0]["workingDirectory"]
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    merged_run["invocations"] = [invocation]
    merged_run["results"] = results
    doc = {k: v for k, v in docs[0].items() if k != "runs"}
    doc["runs"] = [merged_run]
    return doc


def merge_files(paths: Sequence[Path]) -> tuple[str, str, int]:
    """(the merged report's text, its kind, how many findings it holds)."""
    if not paths:
        raise MergeError("name the reports to merge")
    docs = []
    kinds = []
    for path in paths:
        doc = _load(path)
        try:
            kinds.append(kind_of(doc))
        except MergeError as exc:
            raise MergeError(f"{path}: {exc}") from None
        docs.append(doc)
    if len(set(kinds)) > 1:
        raise MergeError("the reports mix JSON and SARIF; merge one kind at a time")
    if kinds[0] == "json":
        merged_json = merge_json(docs)
        return json.dumps(merged_json, indent=2) + "\n", "json", len(merged_json)
    merged = merge_sarif(docs, [str(p) for p in paths])
    return json.dumps(merged, indent=2) + "\n", "sarif", len(merged["runs"][0]["results"])
