"""GitLab Code Quality JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from auditlint.model import Finding


def render_gitlab(findings: Sequence[Finding]) -> str:
    out = []
    seen: dict[str, int] = {}
    for f in sorted(findings, key=Finding.sort_key):
        base = f"{f.code}:{f.path}:{f.source_line.strip()}"
        seen[base] = seen.get(base, 0) + 1
        fingerprint = hashlib.sha256(f"{base}:{seen[base]}".encode()).hexdigest()
        out.append(
            {
                "description": f"{f.code} {f.message}",
                "check_name": f.code,
                "fingerprint": fingerprint,
                "severity": "major",
                "location": {"path": f.path, "lines": {"begin": f.line, "end": f.end_line}},
            }
        )
    return json.dumps(out, indent=2) + "\n"
