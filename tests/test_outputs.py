"""Output formats: SARIF against the official schema, stable fingerprints, github escaping."""

from __future__ import annotations

import json

import jsonschema

from auditlint.api import lint_source
from auditlint.model import Finding
from auditlint.output import RenderContext, render
from auditlint.output.github import escape_data, escape_property, render_github
from tests.conftest import SARIF_SCHEMA

SOURCE = "import requests\n\n\ndef f(url):\n    return requests.get(url)\n\n\ndef g(url):\n    return requests.get(url)\n"


def _sarif(findings: list[Finding]) -> dict:
    return json.loads(render("sarif", findings, [], RenderContext(cwd=".")))


def test_sarif_validates_against_schema() -> None:
    findings = lint_source(SOURCE, "pkg/mod.py")
    doc = _sarif(findings)
    schema = json.loads(SARIF_SCHEMA.read_text())
    errors = list(jsonschema.Draft4Validator(schema).iter_errors(doc))
    assert errors == []
    run = doc["runs"][0]
    assert run["automationDetails"]["id"] == "auditlint/"
    assert run["invocations"][0]["workingDirectory"]["uri"].startswith("file:///")
    rules = run["tool"]["driver"]["rules"]
    assert all(len(r["fullDescription"]["text"]) <= 1024 for r in rules)
    assert all(r["help"]["markdown"].count("## What it does") == 1 for r in rules)
    result = run["results"][0]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/mod.py"
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 5,
        "startColumn": 12,
        "endLine": 5,
        "endColumn": 29,
    }
    assert result["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"] == ", timeout=10"


def test_sarif_fingerprints_are_stable_and_distinct() -> None:
    before = _sarif(lint_source(SOURCE, "m.py"))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["primaryLocationLineHash"] for r in before]
    assert len(set(prints)) == 2, "identical lines get distinct occurrence numbers"
    shifted = "import os\nimport sys\n\n" + SOURCE.replace("def f(url):", "def f(url):\n    x = 1")
    after = _sarif(lint_source(shifted, "m.py"))["runs"][0]["results"]
    assert [r["partialFingerprints"]["primaryLocationLineHash"] for r in after] == prints
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after] != [
        r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in before
    ]


def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    f = Finding("AL401", "x", "bad: 100%, really\nyes", "dir,1/a:b.py", 3, 4, 3, 9)
    line = render_github([f])
    assert line == (
        "::error title=AL401 (x),file=dir%2C1/a%3Ab.py,line=3,col=4,endLine=3,endColumn=9"
        "::AL401 bad: 100%25, really%0Ayes\n"
    )


def test_json_is_sorted_with_one_based_positions() -> None:
    findings = lint_source("import requests\nrequests.get('u'); requests.post('u')\n", "m.py")
    data = json.loads(render("json", list(reversed(findings)), [], RenderContext()))
    assert [(d["line"], d["column"]) for d in data] == [(2, 1), (2, 20)]


def test_gitlab_code_quality() -> None:
    data = json.loads(render("gitlab", lint_source(SOURCE, "m.py"), [], RenderContext()))
    assert len({d["fingerprint"] for d in data}) == 2
    assert data[0]["location"] == {"path": "m.py", "lines": {"begin": 5, "end": 5}}
