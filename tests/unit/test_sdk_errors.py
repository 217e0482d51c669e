"""One mapping from sidecar answers to typed refusals and HTTP answers, checked for every documented reason and for
any header value a client or a policy could produce."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coresdk.client import errors
from coresdk.client.errors import (
    AuthenticationFailed,
    Forbidden,
    ScopeMissing,
    SidecarError,
    TokenMissing,
    denial,
    from_reason,
)
from coresdk.integrations.http import PublicPaths, answer, bearer_token, only_one

ROOT = Path(__file__).resolve().parents[2]
# What the developer guide tells a backend to answer, by gRPC status; two reasons are answered as what they mean
# to the HTTP client (an oversized token is a bad token, a token without a tenant may not act anywhere).
DOC_STATUS = {
    "UNAUTHENTICATED": 401,
    "INVALID_ARGUMENT": 400,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "UNAVAILABLE": 503,
}
REFILED = {"TOKEN_TOO_LARGE": 401, "TENANT_REQUIRED": 403}


def documented_reasons() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "developer-guide.md").read_text()
    table = text.split("## Error reasons", 1)[1]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|", table, flags=re.M)
    found = [(code, reason) for code, reasons in rows for reason in re.findall(r"`([A-Z_]+)`", reasons)]
    assert len(found) > 30
    return found


@pytest.mark.parametrize(("code", "reason"), documented_reasons())
def test_every_documented_reason_maps_to_its_http_status(code: str, reason: str) -> None:
    err = from_reason(reason, getattr(grpc.StatusCode, code), "")
    assert err.reason == reason
    assert err.http_status == REFILED.get(reason, DOC_STATUS[code])
    a = answer(err)
    assert a.status == err.http_status and set(a.body) == {"error", "error_description"}
    assert reason in a.body["error_description"]
    if a.status == 401 and reason != "TOKEN_MISSING":
        assert a.headers["WWW-Authenticate"].startswith('Bearer realm="coresdk", error="invalid_token"')
    if a.status == 503:
        assert a.headers["Retry-After"] == "5"


@pytest.mark.parametrize(
    "reason", ["SCOPE_MISSING", "ROLE_INSUFFICIENT", "TENANT_MISMATCH", "NOT_OWNER", "MFA_REQUIRED", "POLICY_ERROR", ""]
)
def test_every_denial_is_403(reason: str) -> None:
    err = denial(reason, "orders:delete")
    assert isinstance(err, Forbidden) and err.http_status == 403
    assert isinstance(err, ScopeMissing) == (reason == "SCOPE_MISSING")
    challenge = answer(err).headers.get("WWW-Authenticate")
    expected = 'Bearer realm="coresdk", error="insufficient_scope", scope="orders:delete"'
    assert challenge == (expected if reason == "SCOPE_MISSING" else None)


def test_unknown_codes_fail_closed_and_transport_failures_are_sidecar_unavailable() -> None:
    assert type(from_reason("", grpc.StatusCode.UNAVAILABLE)) is errors.SidecarUnavailable
    assert type(from_reason("", grpc.StatusCode.DEADLINE_EXCEEDED)) is errors.SidecarUnavailable
    assert from_reason("", grpc.StatusCode.UNKNOWN).http_status == 500
    assert type(from_reason("SOMETHING_NEW", grpc.StatusCode.UNAUTHENTICATED)) is AuthenticationFailed


def test_a_missing_token_gets_a_challenge_without_an_error_code() -> None:
    a = answer(TokenMissing())
    assert (a.status, a.headers) == (401, {"WWW-Authenticate": 'Bearer realm="coresdk"'})


@given(st.text(max_size=200), st.text(max_size=80))
def test_answers_never_carry_header_injection(reason: str, permission: str) -> None:
    for err in (AuthenticationFailed(reason), ScopeMissing(reason, permission=permission), errors.Unavailable(reason)):
        for value in answer(err).headers.values():
            assert "\r" not in value and "\n" not in value
            inner = re.findall(r'="([^"]*)"', value)
            assert value.count('"') == 2 * len(inner)


@given(st.text(max_size=300))
def test_bearer_parsing_gives_one_b64token_or_a_401(header: str) -> None:
    try:
        token = bearer_token(header)
    except AuthenticationFailed as err:
        assert err.http_status == 401
        return
    assert re.fullmatch(r"[A-Za-z0-9\-._~+/]+=*", token)
    assert header.strip().lower().startswith("bearer ")


def test_bearer_parsing_cases() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer abc") == "abc"  # RFC 7235: the scheme is case-insensitive
    for missing in (None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer   "):
        with pytest.raises(TokenMissing):
            bearer_token(missing)
    for malformed in ("Bearer a b", "Bearer " + "a" * 20000, "Bearer a,b"):
        with pytest.raises(AuthenticationFailed) as info:
            bearer_token(malformed)
        assert info.value.reason == "MALFORMED"
    with pytest.raises(AuthenticationFailed):
        only_one(["Bearer a", "Bearer b"])
    assert only_one([]) is None


def test_public_paths_match_exactly() -> None:
    public = PublicPaths(["/healthz"])
    assert "/healthz" in public
    assert all(p not in public for p in ("/healthz/", "/healthz/x", "//healthz", "/HEALTHZ", "/healthz%2F"))
    with pytest.raises(ValueError):
        PublicPaths(["healthz"])


def test_every_typed_refusal_has_a_status() -> None:
    for cls in errors.BY_REASON.values():
        err = cls()
        assert isinstance(err, SidecarError) and err.http_status in (400, 401, 403, 404, 500, 503)
        assert err.reason == cls.default_reason
