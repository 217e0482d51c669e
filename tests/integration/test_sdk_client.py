"""The SDK client against real sidecars: dataclass results, typed refusals carrying reason and HTTP status, secrets
through the sidecar's cache (OpenBao behind it), masking, encryption, mTLS from CORESDK_TLS_*, and the retry rule
(only transport failures of calls that change nothing) against a gRPC server that fails on purpose."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from coresdk.client import (
    AsyncClient,
    AudienceMismatch,
    AuditEvent,
    AuthenticationFailed,
    BadSignature,
    Client,
    ClientSettings,
    InvalidRequest,
    KeysUnavailable,
    Principal,
    ScopeMissing,
    SecretNotFound,
    SecretPathNotAllowed,
    SidecarUnavailable,
    TokenExpired,
    TokenMissing,
)
from coresdk.client.calls import Retry
from coresdk.errors import Unavailable
from coresdk.v1 import audit_pb2, audit_pb2_grpc, auth_pb2_grpc, common_pb2
from sidecar.grpc_errors import status_details
from tests.support.jwks_server import JwksServer
from tests.support.openbao import OpenBao
from tests.support.pki import make_pki
from tests.support.ports import free_port
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import SigningKey, claims


@pytest.fixture(scope="module")
def vault_sidecar(bao: OpenBao, jwks: JwksServer) -> Iterator[SidecarProcess]:
    bao.put("app/orders-db", {"username": "orders", "password": "pw-v1"})
    bao.put("app/orders-db", {"username": "orders", "password": "pw-v2"})
    proc = SidecarProcess({**trusting(jwks.url), **bao.approle_env("sidecar"), "CORESDK_SECRET_PATHS": "app"})
    yield proc
    proc.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(vault_sidecar: SidecarProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(ClientSettings(address=vault_sidecar.target)) as c:
        yield c


async def test_authenticate_gives_a_plain_principal(client: AsyncClient, keys: dict[str, SigningKey]) -> None:
    principal = await client.authenticate(keys["rs"].sign(claims(email="jane@example.com")))
    assert isinstance(principal, Principal)
    assert (principal.subject, principal.tenant_id, principal.client_id) == ("user-42", "tenant-a", "client-1")
    assert principal.scopes == ("orders:read", "orders:write") and principal.roles == ("editor",)
    assert principal.claims["email"] == "jane@example.com"
    assert principal.expires_at is not None and principal.expires_at > dt.datetime.now(dt.UTC)
    with pytest.raises(TypeError):
        principal.claims["email"] = "other"  # type: ignore[index]


async def test_refusals_are_typed_with_reason_and_http_status(client: AsyncClient, keys: dict[str, SigningKey]) -> None:
    now = int(time.time())
    forged = SigningKey.rsa("rs-1").sign(claims())  # the trusted kid, another key
    cases: list[tuple[str, type[Exception], str]] = [
        (keys["rs"].sign(claims(iat=now - 900, exp=now - 300)), TokenExpired, "TOKEN_EXPIRED"),
        (keys["rs"].sign(claims(aud="api://elsewhere")), AudienceMismatch, "AUDIENCE_MISMATCH"),
        (forged, BadSignature, "BAD_SIGNATURE"),
        (keys["rs"].sign(claims(iss="https://evil.test")), AuthenticationFailed, "ISSUER_MISMATCH"),
        ("", TokenMissing, "TOKEN_MISSING"),
    ]
    for token, cls, reason in cases:
        with pytest.raises(cls) as info:
            await client.authenticate(token)
        assert (info.value.reason, info.value.http_status) == (reason, 401)


async def test_decisions_are_answers_and_require_makes_a_denial_an_error(
    client: AsyncClient, keys: dict[str, SigningKey]
) -> None:
    token = keys["rs"].sign(claims())
    decision = await client.authorize(token, "orders", "delete")
    assert (decision.allowed, decision.reason) == (False, "SCOPE_MISSING")
    assert decision.principal is not None and decision.principal.subject == "user-42"
    assert (await client.require(token, "orders:read")).tenant_id == "tenant-a"
    with pytest.raises(ScopeMissing) as info:
        await client.require(token, "orders:delete")
    assert (info.value.http_status, info.value.permission) == (403, "orders:delete")
    other_tenant = await client.authorize(token, "orders", "read", tenant_id="tenant-b")
    assert (other_tenant.allowed, other_tenant.reason) == (False, "TENANT_MISMATCH")
    with pytest.raises(ValueError, match="resource:action"):
        await client.require(token, "Orders:Read")


async def test_secrets_come_through_the_sidecar_and_never_show_in_repr(client: AsyncClient) -> None:
    secret = await client.secret("app/orders-db", "password")
    assert (secret.value, secret.version, secret.stale) == ("pw-v2", 2, False)
    assert "pw-v2" not in repr(secret)
    assert (await client.secret("app/orders-db", "password", version=1)).value == "pw-v1"
    assert dict((await client.secret("app/orders-db")).data) == {"username": "orders", "password": "pw-v2"}
    with pytest.raises(SecretNotFound) as missing:
        await client.secret("app/nothing-here", "password")
    assert missing.value.http_status == 404
    with pytest.raises(SecretPathNotAllowed) as outside:
        await client.secret("elsewhere/db", "password")
    assert outside.value.http_status == 403


def test_the_sync_client_is_the_same_client(vault_sidecar: SidecarProcess, keys: dict[str, SigningKey]) -> None:
    with Client(ClientSettings(address=vault_sidecar.target)) as sync:
        assert sync.secret("app/orders-db", "password").value == "pw-v2"
        assert sync.require(keys["rs"].sign(claims()), "orders:write").subject == "user-42"
        with pytest.raises(ScopeMissing):
            sync.require(keys["rs"].sign(claims()), "orders:delete")


async def test_masking_and_field_encryption(client: AsyncClient) -> None:
    masked = await client.mask_text("write to jane.doe@example.com")
    assert "jane.doe@example.com" not in masked.output and masked.findings[0].entity_type == "EMAIL_ADDRESS"
    doc = await client.mask_json({"note": "card 4111 1111 1111 1111", "password": "hunter2"})
    assert "4111" not in doc.output and "hunter2" not in doc.output
    sealed = await client.encrypt(b"webhook-secret", b"webhooks/42/secret")
    assert await client.decrypt(sealed.ciphertext, b"webhooks/42/secret") == b"webhook-secret"
    with pytest.raises(InvalidRequest) as moved:
        await client.decrypt(sealed.ciphertext, b"webhooks/43/secret")
    assert moved.value.reason == "CIPHERTEXT_INVALID"


async def test_audit_append_returns_the_durable_receipt(client: AsyncClient) -> None:
    first = await client.append(AuditEvent(action="order.read", outcome="success", actor="u1", chain_id="sdk-c"))
    second = await client.append(AuditEvent(action="order.read", outcome="success", actor="u1", chain_id="sdk-c"))
    assert (second.seq, second.previous_hash) == (first.seq + 1, first.record_hash)
    assert (await client.verify("sdk-c")).chain_valid


def test_mtls_settings_come_from_the_sidecars_variables(
    tmp_path: Path, jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    pki = make_pki(tmp_path)
    proc = SidecarProcess(
        {
            **trusting(jwks.url),
            "CORESDK_TLS_CERT_FILE": str(pki["server_cert"]),
            "CORESDK_TLS_KEY_FILE": str(pki["server_key"]),
            "CORESDK_TLS_CA_FILE": str(pki["ca"]),
        },
        grpc_host="127.0.0.1",
    )
    try:
        env = {
            "CORESDK_SIDECAR_ADDR": proc.target,
            "CORESDK_TLS_CERT_FILE": str(pki["client_cert"]),
            "CORESDK_TLS_KEY_FILE": str(pki["client_key"]),
            "CORESDK_TLS_CA_FILE": str(pki["ca"]),
        }
        with Client.from_env(env) as sync:
            assert sync.authenticate(keys["rs"].sign(claims())).subject == "user-42"
        # without a client certificate the sidecar does not answer at all
        server_only = ClientSettings(address=proc.target, tls=None, timeout_seconds=1.0)
        with Client(server_only) as plain, pytest.raises(SidecarUnavailable):
            plain.authenticate(keys["rs"].sign(claims()))
    finally:
        assert proc.stop() == 0


# --- the retry rule, against a gRPC server that fails the way we choose -----------------------------------------


class Flaky(auth_pb2_grpc.AuthServiceServicer, audit_pb2_grpc.AuditServiceServicer):
    """Answers UNAVAILABLE (without a reason, as the transport would; or with one, as the sidecar would) the first
    `failures` times per method, then succeeds."""

    def __init__(self, failures: int, reason: str = "") -> None:
        self.failures = failures
        self.reason = reason
        self.attempts: Counter[str] = Counter()

    async def _maybe_fail(self, method: str, context: Any) -> None:
        self.attempts[method] += 1
        if self.attempts[method] <= self.failures:
            trailing = (("grpc-status-details-bin", status_details(Unavailable(self.reason))),) if self.reason else ()
            await context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable", trailing_metadata=trailing)

    async def Authenticate(self, request: Any, context: Any) -> common_pb2.Principal:
        await self._maybe_fail("Authenticate", context)
        return common_pb2.Principal(subject="s", tenant_id="t")

    async def Append(self, request: Any, context: Any) -> audit_pb2.AppendResponse:
        await self._maybe_fail("Append", context)
        return audit_pb2.AppendResponse(seq=1)


@pytest_asyncio.fixture(loop_scope="session")
async def flaky_server() -> AsyncIterator[tuple[str, list[Flaky]]]:
    holder: list[Flaky] = [Flaky(0)]

    class Current(auth_pb2_grpc.AuthServiceServicer, audit_pb2_grpc.AuditServiceServicer):
        async def Authenticate(self, request: Any, context: Any) -> common_pb2.Principal:
            return await holder[0].Authenticate(request, context)

        async def Append(self, request: Any, context: Any) -> audit_pb2.AppendResponse:
            return await holder[0].Append(request, context)

    server = grpc.aio.server()
    auth_pb2_grpc.add_AuthServiceServicer_to_server(Current(), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(Current(), server)
    port = free_port("::1")
    server.add_insecure_port(f"[::1]:{port}")
    await server.start()
    yield f"[::1]:{port}", holder
    await server.stop(None)


@pytest.mark.parametrize(
    ("failures", "reason", "authenticate_attempts", "append_attempts", "raised"),
    [
        (1, "", 2, 1, SidecarUnavailable),  # transport failure: the read is retried, the append is not
        (5, "", 3, 1, SidecarUnavailable),  # never more than three attempts
        (1, "KEYS_UNAVAILABLE", 1, 1, KeysUnavailable),  # the sidecar's own refusal is an answer: no retry
    ],
)
async def test_only_transport_failures_of_calls_that_change_nothing_are_retried(
    flaky_server: tuple[str, list[Flaky]],
    failures: int,
    reason: str,
    authenticate_attempts: int,
    append_attempts: int,
    raised: type[Exception],
) -> None:
    address, holder = flaky_server
    holder[0] = flaky = Flaky(failures, reason)
    async with AsyncClient(ClientSettings(address=address), Retry(attempts=3, initial_backoff_seconds=0.01)) as c:
        if authenticate_attempts > failures:
            assert (await c.authenticate("a.b.c")).subject == "s"
        else:
            with pytest.raises(raised):
                await c.authenticate("a.b.c")
        with pytest.raises(raised):
            await c.append(AuditEvent(action="a", outcome="success"))
    assert (flaky.attempts["Authenticate"], flaky.attempts["Append"]) == (authenticate_attempts, append_attempts)
