"""The sidecar process as operators and callers meet it: start-up refusals, mTLS, health, reflection, metrics."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from coresdk.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    policy_pb2,
    policy_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
)
from tests.support.jwks_server import JwksServer
from tests.support.pki import make_pki
from tests.support.processes import SidecarProcess, run_sidecar_expecting_exit, trusting
from tests.support.tokens import ISSUER, SigningKey, claims

PROD = {
    "CORESDK_JWKS_URI": "https://idp.example/jwks.json",
    "CORESDK_EXPECTED_ISSUER": "https://idp.example",
    "CORESDK_EXPECTED_AUDIENCE": "api://a",
}


@pytest.mark.parametrize("missing", sorted(PROD))
def test_production_start_refused_without_issuer_audience_or_jwks(missing: str) -> None:
    env = {k: v for k, v in PROD.items() if k != missing}
    code, output = run_sidecar_expecting_exit({**env, "CORESDK_SIDECAR_ADDR": "[::1]:0"})
    assert code == 2
    assert missing in output
    assert "Traceback" not in output


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "[::]:0"])
def test_non_loopback_start_refused_without_mtls(addr: str) -> None:
    code, output = run_sidecar_expecting_exit({**PROD, "CORESDK_SIDECAR_ADDR": addr})
    assert code == 2
    assert "CORESDK_TLS_CERT_FILE" in output
    assert "Traceback" not in output


def test_mtls_requires_a_client_certificate(tmp_path: Path, keys: dict[str, SigningKey], jwks: JwksServer) -> None:
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
        request = auth_pb2.AuthenticateRequest(token=keys["rs"].sign(claims()))
        ca = pki["ca"].read_bytes()
        anonymous = grpc.ssl_channel_credentials(root_certificates=ca)
        with grpc.secure_channel(proc.target, anonymous) as ch, pytest.raises(grpc.RpcError) as info:
            auth_pb2_grpc.AuthServiceStub(ch).Authenticate(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with grpc.insecure_channel(proc.target) as ch, pytest.raises(grpc.RpcError):
            auth_pb2_grpc.AuthServiceStub(ch).Authenticate(request, timeout=5)
        mutual = grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=pki["client_key"].read_bytes(),
            certificate_chain=pki["client_cert"].read_bytes(),
        )
        with grpc.secure_channel(proc.target, mutual) as ch:
            principal = auth_pb2_grpc.AuthServiceStub(ch).Authenticate(request, timeout=5)
        assert principal.subject == "user-42"
    finally:
        assert proc.stop() == 0


async def test_grpc_health_reports_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "coresdk.v1.AuthService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_all_five_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def one():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for reply in stub.ServerReflectionInfo(one()):
        names = {s.name for s in reply.list_services_response.service}
        break
    assert {
        "coresdk.v1.AuthService",
        "coresdk.v1.PolicyService",
        "coresdk.v1.SecretsService",
        "coresdk.v1.MaskingService",
        "coresdk.v1.AuditService",
        "grpc.health.v1.Health",
    } <= names


async def test_secrets_without_vault_fail_closed(channel: grpc.aio.Channel) -> None:
    from coresdk.client import error_reason

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await secrets_pb2_grpc.SecretsServiceStub(channel).ResolveSecret(
            secrets_pb2.ResolveSecretRequest(path="app/db")
        )
    assert (info.value.code(), error_reason(info.value)) == (grpc.StatusCode.UNAVAILABLE, "VAULT_NOT_CONFIGURED")


async def test_authorize_over_grpc(channel: grpc.aio.Channel, keys: dict[str, SigningKey]) -> None:
    from coresdk.client import error_reason

    stub = policy_pb2_grpc.PolicyServiceStub(channel)
    token = keys["rs"].sign(claims())  # editor in tenant-a with orders:read orders:write
    ok = await stub.Authorize(
        policy_pb2.AuthorizeRequest(token=token, resource="orders", action="write", tenant_id="tenant-a")
    )
    assert (ok.allowed, ok.reason, ok.principal.subject) == (True, "ALLOWED", "user-42")
    other = await stub.Authorize(
        policy_pb2.AuthorizeRequest(token=token, resource="orders", action="read", tenant_id="tenant-b")
    )
    assert (other.allowed, other.reason) == (False, "TENANT_MISMATCH")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Authorize(policy_pb2.AuthorizeRequest(token=token, resource="orders", action="read"))
    assert (info.value.code(), error_reason(info.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "TENANT_REQUIRED")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Authorize(
            policy_pb2.AuthorizeRequest(token="garbage", resource="orders", action="read", tenant_id="t")
        )
    assert (info.value.code(), error_reason(info.value)) == (grpc.StatusCode.UNAUTHENTICATED, "MALFORMED")


async def test_health_http_endpoints(sidecar: SidecarProcess, auth_stub: auth_pb2_grpc.AuthServiceStub) -> None:
    assert sidecar.health("/healthz") == (200, b'{"status": "ok"}')
    status, body = sidecar.health("/readyz")
    assert status == 200
    assert json.loads(body)["issuers"][ISSUER] is True
    with pytest.raises(grpc.aio.AioRpcError):
        await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token="x.y.z"))
    metrics = sidecar.health("/metrics")[1].decode()
    assert 'coresdk_sidecar_requests_total{method="Authenticate",result="MALFORMED"}' in metrics
    assert "coresdk_sidecar_request_seconds_bucket" in metrics
    assert 'coresdk_jwks_fetches_total{issuer="https://issuer.test",result="ok",trigger="initial"} 1.0' in metrics
    assert 'coresdk_jwks_keys{issuer="https://issuer.test"} 3.0' in metrics


async def test_no_token_content_in_logs(
    sidecar: SidecarProcess, auth_stub: auth_pb2_grpc.AuthServiceStub, keys: dict[str, SigningKey]
) -> None:
    for token in (keys["rs"].sign(claims(jti="log-probe")), keys["rs"].sign(claims(aud="elsewhere"))):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    # JWT segments start with "eyJ" (base64 of '{"'); none may reach the log, accepted or refused
    assert "eyJ" not in sidecar.output()
    assert "refused reason=AUDIENCE_MISMATCH" in sidecar.output()


async def test_mask_rpc_text_and_json(channel: grpc.aio.Channel) -> None:
    import json as _json

    from coresdk.client import error_reason
    from coresdk.v1 import masking_pb2, masking_pb2_grpc

    stub = masking_pb2_grpc.MaskingServiceStub(channel)
    text = await stub.Mask(
        masking_pb2.MaskRequest(text="pay 4111 1111 1111 1111 from bob@example.com", policy="partial")
    )
    assert text.text == "pay **** **** **** 1111 from [EMAIL_ADDRESS]"
    assert [(f.entity_type, f.start, f.end, f.operator) for f in text.findings] == [
        ("CREDIT_CARD", 4, 23, "partial"),
        ("EMAIL_ADDRESS", 29, 44, "replace"),
    ]
    doc = await stub.Mask(
        masking_pb2.MaskRequest(json=_json.dumps({"a": [{"note": "ssn 123-45-6789"}], "token": "abc"}))
    )
    assert _json.loads(doc.json) == {"a": [{"note": "ssn [US_SSN]"}], "token": "[REDACTED]"}
    assert "123-45-6789" not in str(doc.findings)
    for bad, reason in (
        (masking_pb2.MaskRequest(json="{nope"), "INVALID_JSON"),
        (masking_pb2.MaskRequest(text="x" * (1024 * 1024 + 1)), "MASK_INPUT_TOO_LARGE"),
        (masking_pb2.MaskRequest(text="x", policy="nope"), "UNKNOWN_MASKING_POLICY"),
        (masking_pb2.MaskRequest(text="4111 1111 1111 1111", policy="pseudonymize"), "MASKING_KEY_NOT_CONFIGURED"),
        (masking_pb2.MaskRequest(), "MASK_INPUT_MISSING"),
        (masking_pb2.MaskRequest(text="4111 1111 1111 1111", policy="encrypt"), "MASKING_ENCRYPTION_NOT_CONFIGURED"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Mask(bad)
        assert (info.value.code(), error_reason(info.value)) == (grpc.StatusCode.INVALID_ARGUMENT, reason)
