"""A verified token's Principal as protobuf wire bytes, written straight from its claims.

Every verified token is answered with its Principal serialised (coresdk.auth.cache); building the message first —
a Struct of every claim — and then serialising it was a third of the work of verifying a token. Here the bytes are
written directly (protobuf encoding: https://protobuf.dev/programming-guides/encoding/), and the entries that repeat
from token to token (issuer, audience, scopes, roles...) are encoded once and reused. The message itself is parsed
from these bytes only when a face asks for it. tests/unit/test_principal_wire.py holds these bytes to the generated
message: whatever the claims, both parse to the same Principal.

Claims that no Principal can carry are refused here, precisely, instead of failing later: a number outside the range
of a double, text that is not Unicode (a lone surrogate), and nesting deeper than protobuf parsers accept.
"""

from __future__ import annotations

import struct
from typing import Any

from coresdk import reasons
from coresdk.auth.claims import audience_list
from coresdk.auth.principal import claim_strings, first_string
from coresdk.errors import Unauthenticated

_DOUBLE = struct.Struct("<d").pack
MAX_DEPTH = 30  # protobuf parsers stop at 100 nested messages; each level of a claim costs three
_entries: dict[tuple[str, Any], bytes] = {}
_ENTRY_CACHE = 4096
_UNCACHED = frozenset({"jti", "iat", "exp", "nbf", "auth_time"})  # differ in every token: caching them only churns


_ONE_BYTE = tuple(bytes((n,)) for n in range(0x80))  # the varints of 0..127, built once


def varint(n: int) -> bytes:
    """A protobuf base-128 varint."""
    if 0 <= n < 0x80:
        return _ONE_BYTE[n]
    n &= 0xFFFFFFFFFFFFFFFF  # negative int64: ten bytes of two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited protobuf field: its tag byte(s), the payload's length, the payload."""
    n = len(payload)
    return tag + (_ONE_BYTE[n] if n < 0x80 else varint(n)) + payload


_ld = length_delimited


def _text(value: str) -> bytes:
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise Unauthenticated(reasons.MALFORMED, "a claim holds text that is not valid Unicode") from None


def _value(v: Any, depth: int) -> bytes:
    """google.protobuf.Value: null 1, number 2, string 3, bool 4, struct 5, list 6."""
    t = type(v)
    if t is str:
        return _ld(b"\x1a", _text(v))
    if t is bool:
        return b"\x20\x01" if v else b"\x20\x00"
    if t is int or t is float:
        try:
            return b"\x11" + _DOUBLE(float(v))
        except OverflowError:
            raise Unauthenticated(
                reasons.INVALID_CLAIM, "a claim holds a number outside the range of a double"
            ) from None
    if v is None:
        return b"\x08\x00"
    if depth >= MAX_DEPTH:
        raise Unauthenticated(reasons.INVALID_CLAIM, f"claims nest deeper than {MAX_DEPTH} levels")
    if t is list:
        return _ld(b"\x32", b"".join([_ld(b"\x0a", _value(x, depth + 1)) for x in v]))
    return _ld(b"\x2a", _struct(v, depth + 1))


def _entry(key: str, value: Any, depth: int) -> bytes:
    return _ld(b"\x0a", _ld(b"\x0a", _text(key)) + _ld(b"\x12", _value(value, depth)))


def _struct(obj: dict[str, Any], depth: int) -> bytes:
    """google.protobuf.Struct: map<string, Value> fields = 1, one length-delimited entry per key."""
    return b"".join([_entry(k, v, depth) for k, v in obj.items()])


def _claims(claims: dict[str, Any]) -> bytes:
    out = []
    for k, v in claims.items():
        t = type(v)
        if k in _UNCACHED or not (t is str or t is bool or v is None or (t is list and all(type(x) is str for x in v))):
            out.append(_entry(k, v, 0))
            continue
        cache_key = (k, tuple(v) if t is list else (t, v))
        encoded = _entries.get(cache_key)
        if encoded is None:
            encoded = _entry(k, v, 0)
            if len(_entries) >= _ENTRY_CACHE:
                _entries.clear()
            _entries[cache_key] = encoded
        out.append(encoded)
    return b"".join(out)


def _timestamp(seconds: float) -> bytes:
    """google.protobuf.Timestamp: seconds 1 (int64), nanos 2 (int32); zero fields are left out, as protobuf does."""
    whole = int(seconds)
    nanos = 0 if whole == seconds else round((seconds - whole) * 1e9) % 1_000_000_000
    return (b"\x08" + varint(whole) if whole else b"") + (b"\x10" + varint(nanos) if nanos else b"")


def _string_field(tag: bytes, value: str) -> bytes:
    return _ld(tag, _text(value)) if value else b""


def _head(claims: dict[str, Any]) -> tuple[bytes, bytes]:
    """(Principal fields 1-7, the Struct entries of the claims that are not per-token) for these claims."""
    scopes = claim_strings(claims.get("scope"), split=True) or claim_strings(claims.get("scp"), split=True)
    parts = [
        _string_field(b"\x0a", str(claims["sub"])),
        _string_field(b"\x12", str(claims["iss"])),
        *[_ld(b"\x1a", _text(a)) for a in audience_list(claims)],
        *[_ld(b"\x22", _text(s)) for s in scopes],
        *[_ld(b"\x2a", _text(r)) for r in claim_strings(claims.get("roles"), split=False)],
        _string_field(b"\x32", first_string(claims, "tenant_id", "tid")),
        _string_field(b"\x3a", first_string(claims, "client_id", "azp")),
    ]
    return b"".join(parts), _claims({k: v for k, v in claims.items() if k not in _UNCACHED})


def _shape(claims: dict[str, Any]) -> tuple[Any, ...] | None:
    """What a token's head depends on: every claim but the per-token ones, exactly (a bool is never taken for the
    number it equals); None when a claim's value is not plain text, a list of text, a bool or null."""
    key: list[Any] = []
    for k, v in claims.items():
        if k in _UNCACHED:
            continue
        t = type(v)
        if t is str:
            key += (k, v)
        elif t is list and all(type(x) is str for x in v):
            key += (k, tuple(v))
        elif t is bool or v is None:
            key += (k, (t, v))
        else:
            return None
    return tuple(key)


_heads: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}
_HEAD_CACHE = 1024


# A per-token claim holding a number is the Struct entry {key: Value{number_value}}: a fixed prefix for its name,
# then the double's eight bytes.
_NUMBER_ENTRY = {
    k: b"\x0a" + varint(len(_ld(b"\x0a", k.encode())) + 11) + _ld(b"\x0a", k.encode()) + b"\x12\x09\x11"
    for k in _UNCACHED
}


def _per_token_entries(claims: dict[str, Any]) -> bytes:
    """The Struct entries of the per-token claims (jti, iat, exp, nbf, auth_time), in the claims' order."""
    out = []
    for k in claims:
        if k in _UNCACHED:
            v = claims[k]
            t = type(v)
            if t is int or t is float:
                try:
                    out.append(_NUMBER_ENTRY[k] + _DOUBLE(v))
                    continue
                except (OverflowError, struct.error):
                    pass  # judged (and refused) by the general rule below
            out.append(_entry(k, v, 0))
    return b"".join(out)


def principal_wire(claims: dict[str, Any]) -> tuple[bytes, str]:
    """(the serialised Principal, its token_id) for verified claims (sub, iss, aud, iat and exp already checked).

    Tokens of one client differ only in jti, iat and exp: everything else of the Principal (the head) is encoded
    once per distinct set of the other claims and reused. The claims Struct is a map, so its entries may come in any
    order: the head's entries first, then the per-token ones.
    """
    shape = _shape(claims)
    cached = _heads.get(shape) if shape is not None else None
    if cached is None:
        cached = _head(claims)
        if shape is not None:
            if len(_heads) >= _HEAD_CACHE:
                _heads.clear()
            _heads[shape] = cached
    head, entries = cached
    token_id = first_string(claims, "jti")
    return (
        b"".join(
            [
                head,
                _string_field(b"\x42", token_id),
                _ld(b"\x4a", _timestamp(claims["iat"])),
                _ld(b"\x52", _timestamp(claims["exp"])),
                _ld(b"\x5a", entries + _per_token_entries(claims)),
            ]
        ),
        token_id,
    )
