"""AL602: the hoisting fix keeps behaviour (code run before and after), and the rule's verdict
follows what the loop body does to the payload."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fix, lint

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def _run(code: str, *args: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(code, "example.py", "exec"), namespace)  # noqa: S102 - the point is to run it
    return namespace["run"](*args)


PROGRAMS = {
    "dumps": """
        import json
        def run(items, payload):
            out = []
            for item in items:
                out.append((item, json.dumps(payload)))
            return out
        """,
    "dumps-conditional": """
        import json
        def run(items, payload):
            out = []
            for item in items:
                if item % 2:
                    out.append(json.dumps(payload, sort_keys=True))
            return out
        """,
    "comprehension": """
        import json
        def run(items, payload):
            return [json.dumps(payload) + str(i) for i in items]
        """,
    "loads-read-only": """
        import json
        def run(items, payload):
            text = json.dumps(payload)
            found = []
            for item in items:
                data = json.loads(text)
                found.append(str(item) in str(data))
            return found
        """,
    "nested": """
        import json
        def run(items, payload):
            out = []
            for a in items:
                for b in items:
                    out.append(json.dumps([payload, a]) + str(b))
            return out
        """,
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_is_fixed(name: str) -> None:
    code = textwrap.dedent(PROGRAMS[name])
    assert len(lint(code, "AL602")) == 1
    fixed = fix(code, "AL602")
    assert fixed != code
    assert lint(fixed, "AL602") == []


@settings(max_examples=60, deadline=None)
@given(payload=json_data, items=st.lists(st.integers(min_value=0, max_value=9), max_size=5))
def test_fixed_programs_give_the_same_output(payload: Any, items: list[int]) -> None:
    for source in PROGRAMS.values():
        code = textwrap.dedent(source)
        fixed = fix(code, "AL602")
        assert _run(fixed, items, payload) == _run(code, items, payload)


def test_shared_parse_is_not_hoisted_when_mutated() -> None:
    code = textwrap.dedent(
        """
        import json
        def run(items, text):
            rows = []
            for item in items:
                row = json.loads(text)
                row["id"] = item
                rows.append(row)
            return rows
        """
    )
    findings = lint(code, "AL602")
    assert len(findings) == 1 and findings[0].fix is None
    assert _run(code, [1, 2], '{"a": 1}') == [{"a": 1, "id": 1}, {"a": 1, "id": 2}]


SAFE_STATEMENTS = [
    "total += len(payload)",
    "print(payload.get('a'), file=sink)",
    "seen.append(item)",
    "x = payload.get('a')",
    "n = sorted(payload)",
    "flag = 'a' in payload",
    "label = f'{payload}-{item}'",
]
MUTATING_STATEMENTS = [
    "payload['a'] = item",
    "payload.update(a=item)",
    "payload.pop('a', None)",
    "touch(payload)",
    "alias = payload\nalias['b'] = item",
    "payload = dict(payload, n=item)",
    "payload.setdefault('a', item)",
    "inner = payload['list']\ninner.append(item)",
    "del payload['list']",
    "payload |= {'z': item}",
    "seen.append(payload)",
]


def _loop(statements: list[str]) -> str:
    body = "".join(
        f"        {line}\n"
        for s in [*statements, "out.append(json.dumps(payload))"]
        for line in s.split("\n")
    )
    return (
        "import io\n"
        "import json\n\n"
        "def touch(d):\n"
        "    d['t'] = 1\n\n"
        "def run(items, payload):\n"
        "    sink = io.StringIO()\n"
        "    seen, out, total = [], [], 0\n"
        "    for item in items:\n"
        f"{body}"
        "    return out, seen, total\n"
    )


@settings(max_examples=80, deadline=None)
@given(
    safe=st.lists(st.sampled_from(SAFE_STATEMENTS), max_size=3),
    mutating=st.lists(st.sampled_from(MUTATING_STATEMENTS), max_size=2),
    items=st.lists(st.integers(min_value=0, max_value=5), max_size=4),
)
def test_verdict_follows_the_loop_body(safe: list[str], mutating: list[str], items: list[int]) -> None:
    code = _loop([*safe, *mutating])
    findings = lint(code, "AL602")
    assert len(findings) == (0 if mutating else 1), code
    if findings:
        fixed = fix(code, "AL602")
        fresh = lambda: {"a": 1, "list": [1]}  # noqa: E731 - a fresh payload per run
        assert _run(fixed, items, fresh()) == _run(code, items, fresh())


@pytest.mark.parametrize(
    ("source", "applicability"),
    [
        # The loop may run zero times: hoisted, `dumps` of an unserialisable value would raise.
        ("import json\ndef f(event, urls):\n    for u in urls:\n        send(u, json.dumps(event))\n", "unsafe"),
        ("import json\ndef f(event):\n    for i in range(3):\n        send(i, json.dumps(event))\n", "safe"),
        ("import json\ndef f(event):\n    for u in ('a', 'b'):\n        send(u, json.dumps(event))\n", "safe"),
        ("import json\ndef f(urls):\n    for u in urls:\n        send(u, json.dumps({'ok': [1, 'x', None]}))\n", "safe"),
        ("import json\ndef f(event, urls):\n    for u in urls:\n        if u:\n            send(u, json.dumps(event))\n", "unsafe"),
    ],
)
def test_fix_is_safe_only_when_hoisting_cannot_add_an_error(source: str, applicability: str) -> None:
    [finding] = lint(source, "AL602")
    assert finding.fix is not None and finding.fix.applicability.value == applicability


def test_an_empty_loop_no_longer_raises_with_the_safe_fixes_only() -> None:
    source = (
        "import json\nimport datetime\n"
        "def f(urls):\n    event = {'at': datetime.datetime(2020, 1, 1)}\n    out = []\n"
        "    for u in urls:\n        out.append(json.dumps(event))\n    return out\n"
    )
    from auditlint.api import fix_source

    assert fix_source(source, select=["AL602"], unsafe=False) == source
    namespace: dict[str, Any] = {}
    exec(compile(source, "m.py", "exec"), namespace)
    assert namespace["f"]([]) == []
