"""SARIF 2.1.0 that GitHub code scanning accepts as is."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import quote

from auditlint import __version__
from auditlint.model import FileError, Finding

if TYPE_CHECKING:
    from auditlint.output import RenderContext

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI = "https://github.com/auditlint/auditlint"


def _section(doc: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\s*\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    return match.group(1).strip() if match else ""


def _short(text: str, limit: int = 1024) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def rule_descriptor(code: str) -> dict[str, Any]:
    from auditlint.registry import rule_class

    cls = rule_class(code)
    doc = cls.docs()
    what = _section(doc, "What it does") or cls.summary
    return {
        "id": cls.code,
        "name": cls.name,
        "shortDescription": {"text": _short(cls.summary or cls.name)},
        "fullDescription": {"text": _short(what)},
        "help": {"text": _short(what), "markdown": doc},
        "helpUri": f"{INFO_URI}/blob/main/rules/{cls.code}.md",
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["performance", "reliability"], "fix": cls.fix_safety},
    }


def fingerprint(f: Finding, occurrence: int) -> str:
    """Line-number-free: the code plus the whitespace-normalised source line, and which
    occurrence of that pair in the file this is."""
    norm = " ".join(f.source_line.split())
    digest = hashlib.sha256(f"{f.code}\0{norm}".encode()).hexdigest()[:16]
    return f"{digest}:{occurrence}"


def _uri(path: str) -> str:
    return quote(path.replace(os.sep, "/"))


def render_sarif(findings: Sequence[Finding], errors: Sequence[FileError], rc: RenderContext) -> str:
    from auditlint.registry import RULES

    codes = sorted(RULES)
    index = {code: i for i, code in enumerate(codes)}
    occurrences: dict[tuple[str, str, str], int] = {}
    results = []
    for f in sorted(findings, key=Finding.sort_key):
        key = (f.path, f.code, " ".join(f.source_line.split()))
        occurrences[key] = occurrences.get(key, 0) + 1
        location = {
            "physicalLocation": {
                "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "%SRCROOT%"},
                "region": {
                    "startLine": f.line,
                    "startColumn": f.column,
                    "endLine": f.end_line,
                    "endColumn": f.end_column,
                },
            }
        }
        result: dict[str, Any] = {
            "ruleId": f.code,
            "ruleIndex": index.get(f.code, 0),
            "level": "warning",
            "message": {"text": f.message},
            "locations": [location],
            "partialFingerprints": {"primaryLocationLineHash": fingerprint(f, occurrences[key])},
        }
        if f.fix is not None and f.fix.edits:
            result["fixes"] = [
                {
                    "description": {"text": f"{f.fix.title} ({f.fix.applicability.value})"},
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": _uri(f.path), "uriBaseId": "%SRCROOT%"},
                            "replacements": [
                                {
                                    "deletedRegion": {
                                        "startLine": e.line,
                                        "startColumn": e.column,
                                        "endLine": e.end_line,
                                        "endColumn": e.end_column,
                                    },
                                    "insertedContent": {"text": e.content},
                                }
                                for e in f.fix.edits
                            ],
                        }
                    ],
                }
            ]
        results.append(result)
    cwd = Path(rc.cwd).resolve()
    invocation: dict[str, Any] = {
        "executionSuccessful": not errors,
        "workingDirectory": {"uri": cwd.as_uri() + "/"},
    }
    if errors:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {"text": e.message},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(e.path), "uriBaseId": "%SRCROOT%"}}}],
            }
            for e in errors
        ]
    doc = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "auditlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFO_URI,
                        "rules": [rule_descriptor(c) for c in codes],
                    }
                },
                "automationDetails": {"id": "auditlint/"},
                "originalUriBaseIds": {"%SRCROOT%": {"uri": cwd.as_uri() + "/"}},
                "invocations": [invocation],
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
