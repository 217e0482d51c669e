"""The sidecar's core job over real gRPC: genuine tokens in, everything else refused with its reason."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import pytest

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.conftest import SECOND_AUDIENCE, SECOND_ISSUER
from tests.support.grpc_client import error_reason
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64, claims, compact, hand_signed

Stub = auth_pb2_grpc.AuthServiceStub


async def refused(stub: Stub, token: str, audience: str = "") -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Authenticate(auth_pb2.AuthenticateRequest(token=token, audience=audience))
    return info.value.code(), error_reason(info.value)


@pytest.mark.parametrize("name", ["rs", "ps", "ec"])
async def test_valid_tokens_give_the_principal(auth_stub: Stub, keys: dict[str, SigningKey], name: str) -> None:
    c = claims(jti=f"jti-{name}")
    token = keys[name].sign(c)
    p = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    assert p.subject == "user-42"
    assert p.issuer == ISSUER
    assert list(p.audience) == [AUDIENCE]
    assert list(p.scopes) == ["orders:read", "orders:write"]
    assert list(p.roles) == ["editor"]
    assert p.tenant_id == "tenant-a"
    assert p.client_id == "client-1"
    assert p.token_id == f"jti-{name}"
    assert p.issued_at.seconds == c["iat"]
    assert p.expires_at.seconds == c["exp"]
    assert p.claims["tenant_id"] == "tenant-a"


async def test_audience_override_within_allowlist(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    token = keys["rs"].sign(claims(aud=["api://orders-admin"]))
    p = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token, audience="api://orders-admin"))
    assert list(p.audience) == ["api://orders-admin"]
    # the same token is not valid for the default audience
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "AUDIENCE_MISMATCH")
    # an audience outside the allowlist is a caller error, not a token verdict
    assert await refused(auth_stub, token, "api://elsewhere") == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "AUDIENCE_NOT_ALLOWED",
    )


def _now() -> int:
    return int(time.time())


class Rel(int):
    """A claim time relative to now, resolved when the token is signed."""


def _resolve(overrides: dict[str, Any]) -> dict[str, Any]:
    now = _now()
    return {k: now + int(v) if isinstance(v, Rel) else v for k, v in overrides.items()}


# Times are offsets from the moment the test runs (collection may happen minutes earlier).
CLAIM_VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("wrong issuer", {"iss": "https://evil.test"}, "ISSUER_MISMATCH"),
    ("issuer differs by trailing slash", {"iss": ISSUER + "/"}, "ISSUER_MISMATCH"),
    ("missing issuer", {"iss": None}, "ISSUER_MISMATCH"),
    ("wrong audience", {"aud": "api://other"}, "AUDIENCE_MISMATCH"),
    ("audience list without ours", {"aud": ["a", "b"]}, "AUDIENCE_MISMATCH"),
    ("missing audience", {"aud": None}, "MISSING_CLAIM"),
    ("non-string audience", {"aud": [1]}, "INVALID_CLAIM"),
    ("expired", {"iat": Rel(-700), "exp": Rel(-100)}, "TOKEN_EXPIRED"),
    ("missing exp", {"exp": None}, "MISSING_CLAIM"),
    ("string exp", {"exp": "9999999999"}, "INVALID_CLAIM"),
    ("boolean exp", {"exp": True}, "INVALID_CLAIM"),
    ("missing iat", {"iat": None}, "MISSING_CLAIM"),
    ("iat in the future", {"iat": Rel(+300), "exp": Rel(+600)}, "IAT_IN_FUTURE"),
    ("nbf in the future", {"nbf": Rel(+300)}, "TOKEN_NOT_YET_VALID"),
    ("missing sub", {"sub": None}, "MISSING_CLAIM"),
    ("empty sub", {"sub": ""}, "INVALID_CLAIM"),
    ("lifetime over an hour", {"iat": Rel(0), "exp": Rel(+3661)}, "LIFETIME_TOO_LONG"),
    ("backdated iat to hide a long lifetime", {"iat": Rel(-3000), "exp": Rel(+3000)}, "LIFETIME_TOO_LONG"),
    ("exp before iat", {"iat": Rel(0), "exp": Rel(-1)}, "INVALID_CLAIM"),
]


@pytest.mark.parametrize(("case", "override", "reason"), CLAIM_VIOLATIONS, ids=[c[0] for c in CLAIM_VIOLATIONS])
async def test_each_claim_rule(
    auth_stub: Stub, keys: dict[str, SigningKey], case: str, override: dict[str, Any], reason: str
) -> None:
    token = keys["rs"].sign(claims(**_resolve(override)))
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, reason)


async def test_leeway_accepts_small_clock_skew(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    now = _now()
    # expired 10 s ago and issued 10 s in the future are both inside the 30 s default leeway
    await auth_stub.Authenticate(
        auth_pb2.AuthenticateRequest(token=keys["rs"].sign(claims(iat=now - 600, exp=now - 10)))
    )
    await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=keys["rs"].sign(claims(iat=now + 10))))
    await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=keys["rs"].sign(claims(nbf=now + 10))))


# --- attacks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_in_any_casing(auth_stub: Stub, alg: str) -> None:
    for sig in (b"", b"x"):
        token = compact({"alg": alg, "kid": "rs-1"}, claims(), sig)
        assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "ALG_NOT_ALLOWED")


async def test_hs256_signed_with_the_public_key(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    import hashlib
    import hmac

    pem = keys["rs"].pem_public()
    header = b64(json.dumps({"alg": "HS256", "kid": "rs-1", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64(sig)}"
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "ALG_NOT_ALLOWED")


@pytest.mark.parametrize("alg", ["HS256", "HS512", "RS384", "RS512", "ES384", "ES512", "PS512", "EdDSA", "rs256", ""])
async def test_other_algorithms_refused(auth_stub: Stub, keys: dict[str, SigningKey], alg: str) -> None:
    token = hand_signed(keys["rs"], {"alg": alg, "kid": "rs-1"}, claims())
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "ALG_NOT_ALLOWED")


@pytest.mark.parametrize("param", ["jwk", "jku", "x5u", "x5c"])
async def test_keys_carried_by_the_token_are_never_trusted(auth_stub: Stub, param: str) -> None:
    attacker = SigningKey.rsa("attacker")
    values = {
        "jwk": attacker.jwk(),
        "jku": "https://attacker.test/jwks.json",
        "x5u": "https://attacker.test/cert.pem",
        "x5c": ["MIIB"],
    }
    token = hand_signed(attacker, {"alg": "RS256", "kid": "rs-1", param: values[param]}, claims())
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "EMBEDDED_KEY_REFUSED")


async def test_crit_refused(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    token = hand_signed(keys["rs"], {"alg": "RS256", "kid": "rs-1", "crit": ["exp"], "exp": 1}, claims())
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "CRIT_NOT_SUPPORTED")


@pytest.mark.parametrize("kid", ["../../etc/passwd", "rs-1' OR '1'='1", "rs-1\x00", "/dev/null", "rs-1;--"])
async def test_hostile_kid_is_just_unknown(auth_stub: Stub, keys: dict[str, SigningKey], kid: str) -> None:
    token = hand_signed(keys["rs"], {"alg": "RS256", "kid": kid}, claims())
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "UNKNOWN_KID")


async def test_kid_required_when_several_keys(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    token = keys["rs"].sign(claims(), kid=False)
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "KID_REQUIRED")


async def test_key_alg_must_match_token_alg(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    # ps-1 is published with alg PS256: an RS256 signature by the same key is refused
    token = hand_signed(keys["ps"], {"alg": "RS256", "kid": "ps-1"}, claims())
    token = token.rsplit(".", 1)[0] + "." + b64(keys["ps"].raw_sign(token.rsplit(".", 1)[0].encode(), "RS256"))
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "KEY_ALG_MISMATCH")


async def test_ecdsa_zero_signature(auth_stub: Stub) -> None:
    token = compact({"alg": "ES256", "kid": "ec-1"}, claims(), bytes(64))
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")


async def test_ecdsa_der_signature_refused(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    header, payload = b64(b'{"alg":"ES256","kid":"ec-1"}'), b64(json.dumps(claims()).encode())
    der = keys["ec"].private.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    assert await refused(auth_stub, f"{header}.{payload}.{b64(der)}") == (
        grpc.StatusCode.UNAUTHENTICATED,
        "BAD_SIGNATURE",
    )


@pytest.mark.parametrize("name", ["rs", "ps", "ec"])
async def test_truncated_padded_and_flipped_signatures(auth_stub: Stub, keys: dict[str, SigningKey], name: str) -> None:
    token = keys[name].sign(claims(jti=f"sig-{name}"))
    head, sig = token.rsplit(".", 1)
    raw = __import__("base64").urlsafe_b64decode(sig + "==")
    flipped = bytes([raw[0] ^ 1]) + raw[1:]
    for bad in (raw[:-1], raw + b"\x00", b"\x00" + raw, flipped):
        assert await refused(auth_stub, f"{head}.{b64(bad)}") == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")


async def test_tampered_payload(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    token = keys["rs"].sign(claims())
    head, _, sig = token.split(".")
    forged = b64(json.dumps(claims(sub="admin", roles=["admin"])).encode())
    assert await refused(auth_stub, f"{head}.{forged}.{sig}") == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")


async def test_oversized_token(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    token = keys["rs"].sign(claims(padding="x" * 9000))
    assert await refused(auth_stub, token) == (grpc.StatusCode.INVALID_ARGUMENT, "TOKEN_TOO_LARGE")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "a.b",
        "a.b.c.d",
        "eyJ!!!.eyJ.c2ln",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0=.c2ln",  # padding
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In1.c2ln",  # non-canonical trailing bits
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\n",
        "ëyJhbGciOiJSUzI1NiJ9.e30.c2ln",
    ],
)
async def test_garbage_base64_and_shape(auth_stub: Stub, token: str) -> None:
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED")


@pytest.mark.parametrize("payload", [b"[1,2]", b'"str"', b"42", b"null", b"{bad json", b"\xff\xfe"])
async def test_non_object_payload(auth_stub: Stub, keys: dict[str, SigningKey], payload: bytes) -> None:
    token = hand_signed(keys["rs"], {"alg": "RS256", "kid": "rs-1"}, payload)
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED")


async def test_non_object_header(auth_stub: Stub) -> None:
    assert await refused(auth_stub, compact(b'["RS256"]', claims())) == (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED")


async def test_duplicate_json_keys_refused(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    body = json.dumps(claims())[:-1] + ', "sub": "admin"}'
    token = hand_signed(keys["rs"], {"alg": "RS256", "kid": "rs-1"}, body.encode())
    assert await refused(auth_stub, token) == (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED")
    dup_header = b'{"alg":"RS256","kid":"rs-1","alg":"none"}'
    assert await refused(auth_stub, hand_signed(keys["rs"], dup_header, claims())) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "MALFORMED",
    )


async def test_empty_token(auth_stub: Stub) -> None:
    assert await refused(auth_stub, "") == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")


# --- several issuers ------------------------------------------------------------------------------


async def test_second_issuer_uses_its_own_keys_and_audiences(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    good = keys["second"].sign(claims(iss=SECOND_ISSUER, aud=SECOND_AUDIENCE))
    p = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=good))
    assert p.issuer == SECOND_ISSUER
    # first issuer's key claiming to be the second issuer: its kid is unknown there
    cross = keys["rs"].sign(claims(iss=SECOND_ISSUER, aud=SECOND_AUDIENCE))
    assert await refused(auth_stub, cross) == (grpc.StatusCode.UNAUTHENTICATED, "UNKNOWN_KID")
    # second issuer's key used with the first issuer's name and a kid the first issuer has
    forged = hand_signed(keys["second"], {"alg": "RS256", "kid": "rs-1"}, claims())
    assert await refused(auth_stub, forged) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")
    # the first issuer's audiences do not apply to the second
    assert await refused(auth_stub, keys["second"].sign(claims(iss=SECOND_ISSUER))) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "AUDIENCE_MISMATCH",
    )


# --- cache and streaming --------------------------------------------------------------------------


async def test_repeated_token_is_served_from_cache(auth_stub: Stub, keys: dict[str, SigningKey], sidecar: Any) -> None:
    token = keys["rs"].sign(claims(jti="cached-1"))

    def hits() -> float:
        body = sidecar.health("/metrics")[1].decode()
        for line in body.splitlines():
            if line.startswith('coresdk_auth_cache_total{result="hit"}'):
                return float(line.split()[-1])
        return 0.0

    before = hits()
    for _ in range(3):
        p = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
        assert p.token_id == "cached-1"
    assert hits() - before == 2
    # a cached token is still bound to its audience
    assert await refused(auth_stub, token, "api://orders-admin") == (
        grpc.StatusCode.UNAUTHENTICATED,
        "AUDIENCE_MISMATCH",
    )


async def test_stream_correlates_results(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    good = [keys["ec"].sign(claims(jti=f"s{i}")) for i in range(20)]
    requests = [auth_pb2.AuthenticateRequest(token=t, request_id=f"r{i}") for i, t in enumerate(good)]
    requests.append(auth_pb2.AuthenticateRequest(token="garbage", request_id="bad"))
    requests.append(auth_pb2.AuthenticateRequest(token=keys["rs"].sign(claims(aud="x")), request_id="aud"))

    async def gen():  # type: ignore[no-untyped-def]
        for r in requests:
            yield r

    results = {r.request_id: r async for r in auth_stub.AuthenticateStream(gen())}
    assert len(results) == 22
    for i in range(20):
        assert results[f"r{i}"].WhichOneof("result") == "principal"
        assert results[f"r{i}"].principal.token_id == f"s{i}"
    assert results["bad"].error.reason == "MALFORMED"
    assert results["bad"].error.code == "UNAUTHENTICATED"
    assert results["aud"].error.reason == "AUDIENCE_MISMATCH"


# Claim values Python holds equal (True == 1 == 1.0, False == 0) or that look alike ("1", ["1"], null): the sidecar
# reuses the encoded Principal of tokens whose other claims are identical, so each must still come back as itself.
_LOOKALIKES: list[Any] = [True, 1, 1.0, "1", ["1"], None, False, 0, "", [], {"1": 1}, "true"]


@pytest.mark.parametrize("face", ["unary", "batch", "stream"])
async def test_lookalike_claims_each_get_their_own_principal(
    auth_stub: Stub, keys: dict[str, SigningKey], face: str
) -> None:
    from google.protobuf.json_format import MessageToDict

    rounds = [
        (value, keys["rs"].sign({**claims(jti=f"look-{face}-{i}"), "x": value})) for i, value in enumerate(_LOOKALIKES)
    ]
    rounds += [
        (value, keys["rs"].sign({**claims(jti=f"again-{face}-{i}"), "x": value})) for i, value in enumerate(_LOOKALIKES)
    ]
    if face == "unary":
        principals = [await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=t)) for _, t in rounds]
    elif face == "batch":
        batch = auth_pb2.AuthenticateBatchRequest(requests=[auth_pb2.AuthenticateRequest(token=t) for _, t in rounds])
        principals = [r.principal for r in (await auth_stub.AuthenticateBatch(batch)).results]
    else:

        async def gen():  # type: ignore[no-untyped-def]
            for _, t in rounds:
                yield auth_pb2.AuthenticateRequest(token=t)

        principals = [r.principal async for r in auth_stub.AuthenticateStream(gen())]
    assert len(principals) == len(rounds)
    for (value, _), principal in zip(rounds, principals, strict=True):
        got = MessageToDict(principal.claims)["x"]
        assert type(got) is (float if type(value) in (int, float) else type(value)), (value, got)
        assert got == value, (value, got)
