"""AL603: serialising once and reusing the text keeps behaviour (code run before and after)."""

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
    "sign-then-body": """
        import hashlib
        import hmac
        import json

        def run(payload):
            signature = hmac.new(b"k", json.dumps(payload).encode(), hashlib.sha256).hexdigest()
            sent = {"body": json.dumps(payload), "sig": signature}
            return sent
        """,
    "reuse-existing-local": """
        import json

        def run(payload):
            body = json.dumps(payload, sort_keys=True)
            size = len(body)
            return size, json.dumps(payload, sort_keys=True)
        """,
    "same-statement": """
        import json

        def run(payload):
            return json.dumps(payload), len(json.dumps(payload))
        """,
    "three-times": """
        import json

        def run(payload):
            out = [json.dumps(payload)]
            out.append(json.dumps(payload))
            out.append(json.dumps(payload))
            return out
        """,
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_is_fixed(name: str) -> None:
    code = textwrap.dedent(PROGRAMS[name])
    assert lint(code, "AL603")
    fixed = fix(code, "AL603")
    assert lint(fixed, "AL603") == []
    assert fixed.count("dumps(") == 1


@settings(max_examples=80, deadline=None)
@given(json_data)
def test_fixed_programs_give_the_same_output(payload: Any) -> None:
    for source in PROGRAMS.values():
        code = textwrap.dedent(source)
        assert _run(fix(code, "AL603"), payload) == _run(code, payload)


def test_new_local_does_not_clash() -> None:
    code = textwrap.dedent(
        """
        import json

        def run(payload, payload_json="taken"):
            first = [json.dumps(payload)]
            first.append(json.dumps(payload))
            return first, payload_json
        """
    )
    fixed = fix(code, "AL603")
    assert "payload_json_2 = json.dumps(payload)" in fixed
    assert _run(fixed, {"a": 1}) == _run(code, {"a": 1})


def test_change_between_is_respected() -> None:
    code = textwrap.dedent(
        """
        import json

        def run(payload):
            first = json.dumps(payload)
            payload["seen"] = True
            return first, json.dumps(payload)
        """
    )
    assert lint(code, "AL603") == []
