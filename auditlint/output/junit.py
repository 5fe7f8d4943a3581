"""JUnit XML: one test suite per file, one failing test case per finding."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby
from typing import Sequence

from auditlint.model import Finding


def render_junit(findings: Sequence[Finding]) -> str:
    root = ET.Element("testsuites", name="auditlint", tests=str(len(findings)), failures=str(len(findings)))
    for path, group in groupby(sorted(findings, key=Finding.sort_key), key=lambda f: f.path):
        items = list(group)
        suite = ET.SubElement(root, "testsuite", name=path, tests=str(len(items)), failures=str(len(items)))
        for f in items:
            case = ET.SubElement(
                suite, "testcase", name=f"{f.code}:{f.line}:{f.column}", classname=path, file=path, line=str(f.line)
            )
            failure = ET.SubElement(case, "failure", message=f.message, type=f.code)
            failure.text = f"{f.path}:{f.line}:{f.column}: {f.code} {f.message}"
    ET.indent(root) if hasattr(ET, "indent") else None
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
