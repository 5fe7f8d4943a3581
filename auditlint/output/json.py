"""The JSON output contract: a sorted array of findings, 1-based lines and columns."""

from __future__ import annotations

import json
from typing import Sequence

from auditlint.model import Finding


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_json() for f in sorted(findings, key=Finding.sort_key)], indent=2) + "\n"
