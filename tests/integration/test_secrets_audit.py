"""Secret reads and decryptions leave a record, or no answer (issue 11, #11), through a real sidecar and OpenBao.

ResolveSecret and Decrypt append a record to the sidecar's chain — path or key id, caller, outcome, never the value —
before they answer; a sidecar whose journal cannot be written answers UNAVAILABLE. encrypt_fields over the same
sidecar encrypts a dict of headers and gives it back exactly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from coresdk.audit.journal import Journal
from coresdk.client import error_reason
from coresdk.encryption.envelope import PREFIX, decrypt_fields, encrypt_fields
from coresdk.v1 import secrets_pb2, secrets_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.openbao import OpenBao
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import ISSUER

Stub = secrets_pb2_grpc.SecretsServiceStub
VALUE = "pw-audited-7Qx9"


def vault_env(bao: OpenBao, jwks: JwksServer, **extra: str) -> dict[str, str]:
    return {**trusting(jwks.url), **bao.approle_env("sidecar"), "CORESDK_SECRET_PATHS": "app", **extra}


@pytest.fixture(scope="module")
def sidecar(bao: OpenBao, jwks: JwksServer) -> Iterator[SidecarProcess]:
    bao.put("app/audited", {"username": "svc", "password": VALUE})
    proc = SidecarProcess(vault_env(bao, jwks))
    yield proc
    proc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def stub(sidecar: SidecarProcess) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(sidecar.target) as ch:
        yield secrets_pb2_grpc.SecretsServiceStub(ch)


def journal(proc: SidecarProcess) -> list[tuple[bytes, dict[str, Any]]]:
    entries = Journal(Path(proc.env["CORESDK_DATA_DIR"]) / "audit", 1 << 30).read_all()
    return [(e.canonical, json.loads(e.canonical)) for e in entries if e.chain_id == "test-chain"]


def records_since(proc: SidecarProcess, start: int, action: str) -> list[dict[str, Any]]:
    return [r for _, r in journal(proc)[start:] if r["action"] == action]


async def refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), error_reason(info.value)


async def test_a_secret_read_is_recorded_with_path_caller_and_outcome_never_the_value(
    stub: Stub, sidecar: SidecarProcess
) -> None:
    start = len(journal(sidecar))
    reply = await stub.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/audited", key="password"))
    assert reply.value == VALUE
    everything = await stub.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/audited"))
    assert everything.data["password"] == VALUE
    first, second = records_since(sidecar, start, "secrets.resolve")
    assert (first["resource"], first["outcome"], first["reason"]) == ("secret/app/audited", "success", "")
    assert first["metadata"]["path"] == "app/audited"
    assert first["metadata"]["field"] == "password"
    assert first["metadata"]["version"] == reply.version
    assert first["actor"].startswith("ipv6:[::1]:")  # the calling process, seen as the sidecar's peer
    assert second["metadata"]["field"] == ""
    assert all(VALUE.encode() not in canonical for canonical, _ in journal(sidecar))


async def test_refused_reads_are_recorded_with_their_reason(stub: Stub, sidecar: SidecarProcess) -> None:
    start = len(journal(sidecar))
    cases = [
        (secrets_pb2.ResolveSecretRequest(path="sys/mounts"), "deny", "SECRET_PATH_NOT_ALLOWED"),
        (secrets_pb2.ResolveSecretRequest(path="app/none"), "error", "SECRET_NOT_FOUND"),
        (secrets_pb2.ResolveSecretRequest(path="app/audited", key="nope"), "error", "SECRET_NOT_FOUND"),
        (secrets_pb2.ResolveSecretRequest(path="../app/audited"), "error", "INVALID_SECRET_PATH"),
    ]
    for request, _, reason in cases:
        assert (await refused(stub.ResolveSecret(request)))[1] == reason
    recorded = records_since(sidecar, start, "secrets.resolve")
    assert [(r["resource"], r["outcome"], r["reason"]) for r in recorded] == [
        (f"secret/{request.path}", outcome, reason) for request, outcome, reason in cases
    ]


async def test_a_decryption_is_recorded_with_key_and_context_never_the_plaintext(
    stub: Stub, sidecar: SidecarProcess
) -> None:
    enc = await stub.Encrypt(secrets_pb2.EncryptRequest(plaintext=b"plain-4Kz8", associated_data=b"hooks/7/secret"))
    start = len(journal(sidecar))
    dec = await stub.Decrypt(secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"hooks/7/secret"))
    assert dec.plaintext == b"plain-4Kz8"
    moved = stub.Decrypt(secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"hooks/8/secret"))
    assert (await refused(moved))[1] == "CIPHERTEXT_INVALID"
    assert (await refused(stub.Decrypt(secrets_pb2.DecryptRequest(ciphertext="not ours"))))[1] == "CIPHERTEXT_INVALID"
    ok, wrong, garbage = records_since(sidecar, start, "secrets.decrypt")
    assert (ok["resource"], ok["outcome"], ok["metadata"]["context"]) == (
        "key/transit:coresdk",
        "success",
        "hooks/7/secret",
    )
    assert (wrong["outcome"], wrong["reason"], wrong["metadata"]["context"]) == (
        "error",
        "CIPHERTEXT_INVALID",
        "hooks/8/secret",
    )
    assert (garbage["resource"], garbage["outcome"]) == ("key/unknown", "error")
    assert all(b"plain-4Kz8" not in canonical for canonical, _ in journal(sidecar))


async def test_a_dict_of_headers_round_trips_through_the_sidecar_encrypted(stub: Stub) -> None:
    async def encrypt(plaintext: bytes, associated: bytes) -> str:
        reply = await stub.Encrypt(secrets_pb2.EncryptRequest(plaintext=plaintext, associated_data=associated))
        return str(reply.ciphertext)

    async def decrypt(ciphertext: str, associated: bytes) -> bytes:
        reply = await stub.Decrypt(secrets_pb2.DecryptRequest(ciphertext=ciphertext, associated_data=associated))
        return bytes(reply.plaintext)

    doc = {"id": "42", "headers": {"Authorization": "Bearer sk-hdr-99", "X-Retry": 3}, "limits": [1, 2.5, None]}
    sealed = await encrypt_fields(doc, ("headers", "limits"), "tools", "42", encrypt)
    assert sealed["headers"].startswith(PREFIX) and sealed["limits"].startswith(PREFIX)
    assert "sk-hdr-99" not in json.dumps(sealed)
    assert await decrypt_fields(sealed, ("headers", "limits"), "tools", "42", decrypt) == doc


async def test_no_answer_without_a_record(bao: OpenBao, jwks: JwksServer, stub: Stub, tmp_path: Path) -> None:
    """A journal that cannot be written: secrets and plaintexts are withheld (UNAVAILABLE), not served unaudited."""
    enc = await stub.Encrypt(secrets_pb2.EncryptRequest(plaintext=b"withheld", associated_data=b"t/1/f"))
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    proc = SidecarProcess(vault_env(bao, jwks, CORESDK_AUDIT_DIR=str(blocked)), wait_ready=False)
    try:
        assert proc.readiness_checks(until=ISSUER) == {ISSUER: True, "audit": False}
        async with grpc.aio.insecure_channel(proc.target) as ch:
            broken = secrets_pb2_grpc.SecretsServiceStub(ch)
            read = broken.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/audited", key="password"))
            assert await refused(read) == (grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE")
            opened = broken.Decrypt(secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"t/1/f"))
            assert await refused(opened) == (grpc.StatusCode.UNAVAILABLE, "AUDIT_UNAVAILABLE")
        assert "pw-audited" not in proc.output()
    finally:
        proc.stop()
