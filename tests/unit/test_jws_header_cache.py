"""The judged-header cache in coresdk.jose.jws must never change a verdict: a header refused once is refused every
time, an accepted one is accepted with the same content, and a cached header cannot be altered by a caller."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.errors import CoreSDKError
from coresdk.jose import jws
from tests.support.tokens import b64

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=6),
    st.sampled_from(["RS256", "ES256", "PS256", "none", "HS256"]),
)
_names = st.sampled_from(["alg", "kid", "typ", "crit", "jwk", "jku", "x5c", "b64", "zip", "cty", "x"])
_headers = st.dictionaries(_names, _values, max_size=5)


def _verdict(token: str) -> tuple[str, object]:
    try:
        parsed = jws.parse_compact(token)
    except CoreSDKError as exc:
        return ("refused", exc.reason)
    return ("accepted", dict(parsed.header))


@settings(max_examples=300, deadline=None)
@given(header=_headers, raw=st.booleans())
def test_verdict_is_the_same_on_every_reading(header: dict[str, object], raw: bool) -> None:
    h = json.dumps(header).encode() if raw else json.dumps(header, separators=(",", ":")).encode()
    token = f"{b64(h)}.{b64(b'{}')}.{b64(b'sig')}"
    jws._judged_headers.clear()
    first = _verdict(token)
    assert _verdict(token) == first == _verdict(token)
    if first[0] == "refused":
        assert b64(h) not in jws._judged_headers  # only accepted headers are kept


def test_a_cached_header_is_read_only_and_payloads_are_still_read_per_token() -> None:
    h = b64(b'{"alg":"RS256","kid":"k1"}')
    one, two = b64(b'{"n":1}'), b64(b'{"n":2}')
    a = jws.parse_compact(f"{h}.{one}.{b64(b'sig')}")
    b = jws.parse_compact(f"{h}.{two}.{b64(b'sig')}")
    assert a.header is b.header
    assert (a.payload, b.payload) == (b'{"n":1}', b'{"n":2}')
    with pytest.raises(TypeError):
        a.header["alg"] = "none"  # type: ignore[index]
    with pytest.raises(CoreSDKError) as refused:
        jws.parse_compact(f"{h}.{b64(b'{}')}.")
    assert refused.value.reason == "BAD_SIGNATURE"  # the empty signature is judged per token, not cached away


def test_the_cache_is_bounded() -> None:
    jws._judged_headers.clear()
    for i in range(jws._HEADER_CACHE_SIZE + 50):
        jws.parse_compact(f"{b64(json.dumps({'alg': 'ES256', 'kid': f'k{i}'}).encode())}.{b64(b'{}')}.{b64(b's')}")
    assert len(jws._judged_headers) == jws._HEADER_CACHE_SIZE
    long_kid = "k" * 250
    h = b64(json.dumps({"alg": "ES256", "kid": long_kid, "pad": "p" * 400}).encode())
    jws.parse_compact(f"{h}.{b64(b'{}')}.{b64(b's')}")
    assert h not in jws._judged_headers  # oversized header segments are judged every time, never kept


def test_duplicate_keys_are_still_refused() -> None:
    for segment in (b'{"alg":"RS256","alg":"none"}', b'{"alg":"RS256","kid":{"a":1,"a":2}}'):
        with pytest.raises(CoreSDKError) as refused:
            jws.parse_compact(f"{b64(segment)}.{b64(b'{}')}.{b64(b'sig')}")
        assert refused.value.reason == "MALFORMED"
    with pytest.raises(CoreSDKError):
        jws.strict_json_object(b'{"sub":"a","sub":"b"}')


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"1E999", b"NaN", b"Infinity", b"-Infinity"])
def test_numbers_a_double_cannot_hold_are_malformed(number: bytes) -> None:
    with pytest.raises(CoreSDKError) as refused:
        jws.strict_json_object(b'{"x":' + number + b"}")
    assert refused.value.reason == "MALFORMED"
    assert jws.strict_json_object(b'{"x":1e308,"y":-2.5e-300}') == {"x": 1e308, "y": -2.5e-300}
