"""AL601: the runtime-style fix to `json_clone` copies JSON data exactly like the round trip."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import fix, lint

ORIGINAL = textwrap.dedent(
    """
    import json

    def snapshot(claim):
        return json.loads(json.dumps(claim))
    """
)

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)


def _snapshot(code: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(code, "example.py", "exec"), namespace)  # noqa: S102 - the point is to run it
    return namespace["snapshot"]


FIXED = fix(ORIGINAL, "AL601", fix_style="runtime")


def test_stdlib_style_only_reports() -> None:
    assert len(lint(ORIGINAL, "AL601")) == 1
    assert fix(ORIGINAL, "AL601") == ORIGINAL


def test_runtime_fix_uses_json_clone() -> None:
    assert "json_clone(claim)" in FIXED
    assert "from auditlint.runtime import json_clone" in FIXED
    assert lint(FIXED, "AL601", fix_style="runtime") == []


@settings(max_examples=150, deadline=None)
@given(json_data)
def test_fixed_code_copies_like_the_round_trip(payload: Any) -> None:
    before, after = _snapshot(ORIGINAL)(payload), _snapshot(FIXED)(payload)
    assert after == before == json.loads(json.dumps(payload))
    if isinstance(payload, (dict, list)) and payload:
        assert after is not payload


def test_copy_is_independent() -> None:
    payload = {"lines": [{"units": 1}], "tags": ["a"]}
    copy = _snapshot(FIXED)(payload)
    copy["lines"][0]["units"] = 99
    copy["tags"].append("b")
    assert payload == {"lines": [{"units": 1}], "tags": ["a"]}


def test_documented_normalisations_match() -> None:
    before, after = _snapshot(ORIGINAL), _snapshot(FIXED)
    for value in (
        {"point": (1, 2)},
        {1: "a", None: "c", 2.5: "d"},
        {True: "b", False: "e"},
        [1.5, "x", None],
    ):
        assert after(value) == before(value)


def test_no_fix_when_json_clone_is_taken() -> None:
    code = "import json\nfrom mylib import json_clone\nx = json.loads(json.dumps({}))\n"
    assert fix(code, "AL601", fix_style="runtime") == code
