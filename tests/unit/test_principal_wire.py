"""The hand-written Principal bytes (coresdk.auth.principal_wire) against the generated message (to_principal):
for any claims a verified token can carry, both parse to the same Principal; claims no Principal can carry are
refused with a precise reason instead of failing later."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.auth.principal import to_principal
from coresdk.auth.principal_wire import MAX_DEPTH, principal_wire
from coresdk.errors import Unauthenticated
from coresdk.v1.common_pb2 import Principal

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_number = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False))
_leaf = st.one_of(st.none(), st.booleans(), _number, _text)
_json = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4), max_leaves=12
)
_names = st.sampled_from(
    ["scope", "scp", "roles", "tenant_id", "tid", "client_id", "azp", "jti", "nbf", "auth_time", "x", "nested", ""]
)


@st.composite
def _claims(draw: st.DrawFn) -> dict[str, Any]:
    iat = draw(st.one_of(st.integers(0, 2**34), st.floats(0, 2**34, allow_nan=False)))
    body: dict[str, Any] = {
        "sub": draw(_text.filter(bool)),
        "iss": draw(_text),
        "aud": draw(st.one_of(_text, st.lists(_text, max_size=3))),
        "iat": iat,
        "exp": iat + draw(st.integers(1, 3600)),
    }
    body.update(draw(st.dictionaries(_names, st.one_of(_json, _text, st.lists(_text, max_size=3)), max_size=6)))
    return json.loads(json.dumps(body))  # as a token's payload decodes


@settings(max_examples=400, deadline=None)
@given(claims=_claims())
def test_the_bytes_are_the_generated_principal(claims: dict[str, Any]) -> None:
    wire, token_id = principal_wire(claims)
    expected = to_principal(claims)
    assert Principal.FromString(wire) == expected
    assert token_id == expected.token_id
    again, _ = principal_wire(claims)  # a second encoding (entries from the cache) is the same Principal
    assert Principal.FromString(again) == expected


def _base(**extra: Any) -> dict[str, Any]:
    return {"sub": "u", "iss": "i", "aud": "a", "iat": 1, "exp": 2, **extra}


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"x": 10**400}, "INVALID_CLAIM"),
        ({"auth_time": 10**400}, "INVALID_CLAIM"),
        ({"nbf": -(10**400)}, "INVALID_CLAIM"),
        ({"x": "\ud800"}, "MALFORMED"),
        ({"\udfff": 1}, "MALFORMED"),
        ({"sub": "a\ud800"}, "MALFORMED"),
    ],
)
def test_claims_no_principal_can_carry_are_refused(extra: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        principal_wire(_base(**extra))
    assert refused.value.reason == reason


def test_nesting_is_bounded() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(Unauthenticated) as refused:
        principal_wire(_base(x=deep))
    assert refused.value.reason == "INVALID_CLAIM"
    for container in (lambda v: {"k": v}, lambda v: [v]):  # the deepest claims accepted still parse
        shallow: Any = 1
        for _ in range(MAX_DEPTH):
            shallow = container(shallow)
        assert Principal.FromString(principal_wire(_base(x=shallow))[0]) == to_principal(_base(x=shallow))


@pytest.mark.parametrize("round_", [1, 2])
def test_heads_of_claims_that_compare_equal_are_not_shared(round_: int) -> None:
    """The head cache keys on each claim's exact type: True, 1, "1", ["1"] and null never share a head."""
    for value in (True, 1, 1.0, "1", ["1"], None, False, 0, "", []):
        claims = _base(x=value, jti=f"t-{round_}")
        wire, _ = principal_wire(claims)
        assert Principal.FromString(wire) == to_principal(claims), value
