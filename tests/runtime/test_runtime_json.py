"""json_clone equals the JSON round trip; SerializedPayload serialises once and signs."""

from __future__ import annotations

import collections
import enum
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlint.runtime import SerializedPayload, json_clone

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=200, deadline=None)
@given(json_data)
def test_clone_equals_the_round_trip(data: Any) -> None:
    assert json_clone(data) == json.loads(json.dumps(data))


@settings(max_examples=100, deadline=None)
@given(json_data)
def test_clone_shares_no_container(data: Any) -> None:
    clone = json_clone(data)

    def containers(value: Any) -> list[int]:
        if isinstance(value, dict):
            return [id(value), *(i for v in value.values() for i in containers(v))]
        if isinstance(value, list):
            return [id(value), *(i for v in value for i in containers(v))]
        return []

    assert not set(containers(clone)) & set(containers(data))


class Status(str, enum.Enum):
    ACTIVE = "active"


class Level(enum.IntEnum):
    HIGH = 3


def test_what_the_round_trip_converts_is_converted_alike() -> None:
    data = {
        "tuple": (1, (2, 3)),
        1: "int key",
        2.5: "float key",
        None: "none key",
        "ordered": collections.OrderedDict(b=1, a=2),
        "enum": Status.ACTIVE,
        "level": Level.HIGH,
    }
    clone = json_clone(data)
    assert clone == json.loads(json.dumps(data))
    assert type(clone["ordered"]) is dict
    assert type(clone["enum"]) is str and type(clone["level"]) is int
    booleans = {True: "yes", False: "no"}
    assert json_clone(booleans) == json.loads(json.dumps(booleans)) == {"true": "yes", "false": "no"}


def test_what_json_cannot_encode_is_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_clone({"when": object()})
    with pytest.raises(TypeError, match="keys must be"):
        json_clone({(1, 2): "tuple key"})


def test_serialized_payload_serialises_once_and_signs_the_same_bytes() -> None:
    payload = {"event": "claim.updated", "id": 42, "note": "caf\u00e9"}
    serialized = SerializedPayload(payload, sort_keys=True)
    assert serialized.text == json.dumps(payload, sort_keys=True)
    assert serialized.bytes == serialized.text.encode("utf-8")
    assert serialized.bytes is serialized.bytes
    expected = hmac.new(b"secret", serialized.bytes, hashlib.sha256).hexdigest()
    assert serialized.signature("secret") == expected
    assert (
        serialized.signature(b"secret", algorithm="sha1")
        == hmac.new(b"secret", serialized.bytes, "sha1").hexdigest()
    )
    payload["id"] = 43
    assert json.loads(serialized.text)["id"] == 42  # captured at construction
    assert len(serialized) == len(serialized.bytes) and str(serialized) == serialized.text
