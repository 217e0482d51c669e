"""Claims → Principal. Accepts the common spellings of scopes, roles, tenant and client across IdPs."""

from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import NULL_VALUE, ListValue, Struct, Value

from coresdk.auth.claims import audience_list
from coresdk.v1.common_pb2 import Principal


def claim_strings(value: Any, split: bool) -> list[str]:
    if isinstance(value, str):
        return value.split() if split else [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def first_string(claims: dict[str, Any], *names: str) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str):
            return value
    return ""


def _timestamp(seconds: float) -> dict[str, int]:
    """A Timestamp's fields; the message constructor builds it in C from the dict (half the cost of a Timestamp())."""
    whole = int(seconds)
    if whole == seconds:
        return {"seconds": whole}
    return {"seconds": whole, "nanos": round((seconds - whole) * 1e9) % 1_000_000_000}


def _value(v: Any) -> Value:
    # Building messages through constructors stays in the C extension; Struct.update() recurses in Python.
    if isinstance(v, str):
        return Value(string_value=v)
    if isinstance(v, bool):
        return Value(bool_value=v)
    if isinstance(v, (int, float)):
        return Value(number_value=v)
    if v is None:
        return Value(null_value=NULL_VALUE)
    if isinstance(v, list):
        return Value(list_value=ListValue(values=[_value(x) for x in v]))
    return Value(struct_value=_struct(v))


def _struct(obj: dict[str, Any]) -> Struct:
    return Struct(fields={k: _value(v) for k, v in obj.items()})


def to_principal(claims: dict[str, Any]) -> Principal:
    """The claims are converted once, here. The Struct is built by the protobuf runtime straight from the dict (about
    half the cost of building Values one by one); the per-Value path stays for anything the runtime refuses."""
    scopes = claim_strings(claims.get("scope"), split=True) or claim_strings(claims.get("scp"), split=True)
    fields: dict[str, Any] = {
        "subject": str(claims["sub"]),
        "issuer": str(claims["iss"]),
        "audience": audience_list(claims),
        "scopes": scopes,
        "roles": claim_strings(claims.get("roles"), split=False),
        "tenant_id": first_string(claims, "tenant_id", "tid"),
        "client_id": first_string(claims, "client_id", "azp"),
        "token_id": first_string(claims, "jti"),
        "issued_at": _timestamp(claims["iat"]),
        "expires_at": _timestamp(claims["exp"]),
    }
    try:
        return Principal(**fields, claims=claims)
    except (TypeError, ValueError, OverflowError):
        return Principal(**fields, claims=_struct(claims))
