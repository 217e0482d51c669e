"""Secrets and encryption through a real OpenBao server (AppRole, KV v2, transit), over real gRPC."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from coresdk.client import error_reason
from coresdk.config.sidecar import load_sidecar_config
from coresdk.encryption.envelope import decrypt_fields, encrypt_fields
from coresdk.metrics import EngineMetrics
from coresdk.v1 import secrets_pb2, secrets_pb2_grpc
from sidecar.secrets.encryption import Encryptor
from sidecar.secrets.resolver import SecretResolver
from sidecar.secrets.vault import VaultSession
from tests.support.jwks_server import JwksServer
from tests.support.openbao import OpenBao
from tests.support.processes import SidecarProcess, trusting

Stub = secrets_pb2_grpc.SecretsServiceStub


def vault_env(bao: OpenBao, jwks: JwksServer, role: str = "sidecar", **extra: str) -> dict[str, str]:
    return {**trusting(jwks.url), **bao.approle_env(role), "CORESDK_SECRET_PATHS": "app,other", **extra}


@pytest.fixture(scope="module")
def vault_sidecar(bao: OpenBao, jwks: JwksServer) -> Iterator[SidecarProcess]:
    bao.put("app/db", {"username": "orders", "password": "s3cret-v1"})
    bao.put("app/db", {"username": "orders", "password": "s3cret-v2"})
    proc = SidecarProcess(vault_env(bao, jwks, CORESDK_SECRET_CACHE_TTL="0"))
    yield proc
    proc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def secrets(vault_sidecar: SidecarProcess) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(vault_sidecar.target) as ch:
        yield secrets_pb2_grpc.SecretsServiceStub(ch)


async def refused(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), error_reason(info.value)


def vault_requests(proc: SidecarProcess) -> float:
    total = 0.0
    for line in proc.health("/metrics")[1].decode().splitlines():
        if line.startswith("coresdk_vault_requests_total"):
            total += float(line.split()[-1])
    return total


async def test_resolve_latest_pinned_and_all_keys(secrets: Stub, vault_sidecar: SidecarProcess) -> None:
    latest = await secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db", key="password"))
    assert (latest.value, latest.version, latest.stale) == ("s3cret-v2", 2, False)
    assert latest.created_time.seconds > 0
    pinned = await secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db", key="password", version=1))
    assert (pinned.value, pinned.version) == ("s3cret-v1", 1)
    everything = await secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db"))
    assert dict(everything.data) == {"username": "orders", "password": "s3cret-v2"}
    assert "s3cret" not in vault_sidecar.output()


async def test_missing_malformed_forbidden_and_outside_allowlist(secrets: Stub, vault_sidecar: SidecarProcess) -> None:
    assert await refused(secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/none"))) == (
        grpc.StatusCode.NOT_FOUND,
        "SECRET_NOT_FOUND",
    )
    assert await refused(secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db", key="nope"))) == (
        grpc.StatusCode.NOT_FOUND,
        "SECRET_NOT_FOUND",
    )
    assert await refused(secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db", version=9))) == (
        grpc.StatusCode.NOT_FOUND,
        "SECRET_NOT_FOUND",
    )
    # allowed by the sidecar, refused by Vault's policy
    assert await refused(secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="other/x"))) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "VAULT_FORBIDDEN",
    )
    before = vault_requests(vault_sidecar)
    for bad in ("../app/db", "app/../x", "/app/db", "app//db", "app/db?x=1", ""):
        assert (await refused(secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path=bad))))[
            0
        ] == grpc.StatusCode.INVALID_ARGUMENT
    for outside in ("sys/mounts", "apps/db", "coresdk/data-key", "secret/app/db"):
        assert await refused(secrets.ResolveSecret(secrets_pb2.ResolveSecretRequest(path=outside))) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "SECRET_PATH_NOT_ALLOWED",
        )
    assert vault_requests(vault_sidecar) == before, "refused paths must never reach Vault"


async def test_transit_encrypt_decrypt_and_bound_associated_data(secrets: Stub) -> None:
    enc = await secrets.Encrypt(
        secrets_pb2.EncryptRequest(plaintext=b"webhook-secret", associated_data=b"webhooks/42/secret")
    )
    assert enc.ciphertext.startswith("cse:v1:transit:coresdk:vault:v")
    assert (
        b"webhook-secret" not in enc.ciphertext.encode()
        and base64.b64encode(b"webhook-secret").decode() not in enc.ciphertext
    )
    dec = await secrets.Decrypt(
        secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"webhooks/42/secret")
    )
    assert dec.plaintext == b"webhook-secret"
    moved = secrets.Decrypt(
        secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"webhooks/43/secret")
    )
    assert await refused(moved) == (grpc.StatusCode.INVALID_ARGUMENT, "CIPHERTEXT_INVALID")
    tampered = enc.ciphertext[:-6] + ("AAAA" if not enc.ciphertext.endswith("AAAA==") else "BBBB") + enc.ciphertext[-2:]
    assert (
        await refused(
            secrets.Decrypt(secrets_pb2.DecryptRequest(ciphertext=tampered, associated_data=b"webhooks/42/secret"))
        )
    )[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert await refused(secrets.Decrypt(secrets_pb2.DecryptRequest(ciphertext="base64isnotencryption"))) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "CIPHERTEXT_INVALID",
    )


async def test_transit_rotation_and_rewrap(bao: OpenBao, jwks: JwksServer, secrets: Stub) -> None:
    old = await secrets.Encrypt(secrets_pb2.EncryptRequest(plaintext=b"v-old", associated_data=b"t/1/f"))
    bao.root.secrets.transit.rotate_key("coresdk")
    new = await secrets.Encrypt(secrets_pb2.EncryptRequest(plaintext=b"v-new", associated_data=b"t/1/f"))
    assert new.key_version == old.key_version + 1
    assert (
        await secrets.Decrypt(secrets_pb2.DecryptRequest(ciphertext=old.ciphertext, associated_data=b"t/1/f"))
    ).plaintext == b"v-old"
    config = load_sidecar_config(vault_env(bao, jwks))
    assert config.vault is not None
    session = VaultSession(config.vault, EngineMetrics())
    await session.login()
    encryptor = Encryptor(session, SecretResolver(session, config.vault), config.vault)
    rewrapped = await encryptor.rewrap(old.ciphertext, b"t/1/f")
    assert f":vault:v{new.key_version}:" in rewrapped
    assert await encryptor.decrypt(rewrapped, b"t/1/f") == b"v-old"
    # the documented helper for application documents: fields encrypted and bound to record and field
    doc = {"id": "42", "url": "https://hooks.example", "secret": "whsec_123", "headers": "X-Api-Key: k"}
    sealed = await encrypt_fields(doc, ("secret", "headers"), "webhooks", "42", encryptor.encrypt_bytes)
    assert sealed["url"] == doc["url"] and sealed["secret"].startswith("cse:v1:") and "whsec" not in str(sealed)
    assert await decrypt_fields(sealed, ("secret", "headers"), "webhooks", "42", encryptor.decrypt) == doc
    with pytest.raises(Exception):
        await decrypt_fields(sealed, ("secret",), "webhooks", "43", encryptor.decrypt)
    await session.stop()


async def test_aesgcm_mode_with_data_key_in_kv(bao: OpenBao, jwks: JwksServer) -> None:
    bao.put("coresdk/data-key", {"key": base64.b64encode(os.urandom(32)).decode()})
    proc = SidecarProcess(vault_env(bao, jwks, CORESDK_ENCRYPTION_MODE="aesgcm"))
    try:
        async with grpc.aio.insecure_channel(proc.target) as ch:
            stub = secrets_pb2_grpc.SecretsServiceStub(ch)
            enc = await stub.Encrypt(
                secrets_pb2.EncryptRequest(plaintext=b"model-api-key", associated_data=b"models/7/api_key")
            )
            assert enc.ciphertext.startswith("cse:v1:aesgcm:1:")
            assert (
                await stub.Decrypt(
                    secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"models/7/api_key")
                )
            ).plaintext == b"model-api-key"
            assert (
                await refused(
                    stub.Decrypt(
                        secrets_pb2.DecryptRequest(ciphertext=enc.ciphertext, associated_data=b"models/8/api_key")
                    )
                )
            )[1] == "CIPHERTEXT_INVALID"
            body = bytearray(base64.urlsafe_b64decode(enc.ciphertext.split(":", 4)[4]))
            body[-1] ^= 1
            flipped = ":".join(enc.ciphertext.split(":")[:4]) + ":" + base64.urlsafe_b64encode(bytes(body)).decode()
            assert (
                await refused(
                    stub.Decrypt(secrets_pb2.DecryptRequest(ciphertext=flipped, associated_data=b"models/7/api_key"))
                )
            )[1] == "CIPHERTEXT_INVALID"
            # the data key itself is never served
            assert (await refused(stub.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="coresdk/data-key"))))[
                1
            ] == "SECRET_PATH_NOT_ALLOWED"
    finally:
        proc.stop()


async def test_wrapped_secret_id_is_used_once(bao: OpenBao, jwks: JwksServer) -> None:
    bao.role("wrapped")
    wrapped = bao.wrapped_secret_id("wrapped")
    env = vault_env(bao, jwks, role="wrapped")
    env.pop("CORESDK_VAULT_SECRET_ID")
    env["CORESDK_VAULT_WRAPPED_SECRET_ID"] = wrapped
    first = SidecarProcess(env)
    try:
        async with grpc.aio.insecure_channel(first.target) as ch:
            got = await secrets_pb2_grpc.SecretsServiceStub(ch).ResolveSecret(
                secrets_pb2.ResolveSecretRequest(path="app/db", key="username")
            )
            assert got.value == "orders"
    finally:
        first.stop()
    second = SidecarProcess(env)  # the same wrapping token again: already unwrapped, so no login
    try:
        async with grpc.aio.insecure_channel(second.target) as ch:
            code, reason = await refused(
                secrets_pb2_grpc.SecretsServiceStub(ch).ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db"))
            )
            assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "VAULT_UNAVAILABLE")
    finally:
        second.stop()


async def test_short_token_ttl_renews_then_relogs_in_without_failed_calls(bao: OpenBao, jwks: JwksServer) -> None:
    bao.root.auth.approle.create_or_update_approle(
        "short", token_policies=["coresdk-sidecar"], token_ttl="3s", token_max_ttl="6s"
    )
    role_id = bao.root.auth.approle.read_role_id("short")["data"]["role_id"]
    secret_id = bao.root.auth.approle.generate_secret_id("short")["data"]["secret_id"]
    env = vault_env(bao, jwks, CORESDK_SECRET_CACHE_TTL="0")
    env.update({"CORESDK_VAULT_ROLE_ID": role_id, "CORESDK_VAULT_SECRET_ID": secret_id})
    proc = SidecarProcess(env)
    try:
        async with grpc.aio.insecure_channel(proc.target) as ch:
            stub = secrets_pb2_grpc.SecretsServiceStub(ch)
            deadline = time.monotonic() + 10
            calls = 0
            while time.monotonic() < deadline:
                got = await stub.ResolveSecret(secrets_pb2.ResolveSecretRequest(path="app/db", key="username"))
                assert got.value == "orders" and not got.stale
                calls += 1
                await asyncio.sleep(0.1)
        metrics = proc.health("/metrics")[1].decode()
        logins = float(
            next(line.split()[-1] for line in metrics.splitlines() if line.startswith("coresdk_vault_logins_total"))
        )
        renewals = float(
            next(
                line.split()[-1]
                for line in metrics.splitlines()
                if line.startswith("coresdk_vault_token_renewals_total")
            )
        )
        assert calls > 50 and renewals >= 1 and logins >= 2, (calls, renewals, logins)
    finally:
        proc.stop()


async def test_outage_serves_stale_then_fails_closed_then_recovers(jwks: JwksServer) -> None:
    own = OpenBao()  # a server of its own: this test stops it
    try:
        own.put("app/db", {"password": "pw"})
        role_id, secret_id = own.role("sidecar")
        env = vault_env(
            own, jwks, CORESDK_SECRET_CACHE_TTL="1", CORESDK_SECRET_MAX_STALE="3", CORESDK_VAULT_TIMEOUT="1"
        )
        env.update({"CORESDK_VAULT_ROLE_ID": role_id, "CORESDK_VAULT_SECRET_ID": secret_id})
        proc = SidecarProcess(env)
        try:
            async with grpc.aio.insecure_channel(proc.target) as ch:
                stub = secrets_pb2_grpc.SecretsServiceStub(ch)
                req = secrets_pb2.ResolveSecretRequest(path="app/db", key="password")
                assert (await stub.ResolveSecret(req)).value == "pw"
                own.stop()
                await asyncio.sleep(1.2)
                stale = await stub.ResolveSecret(req)
                assert (stale.value, stale.stale) == ("pw", True)
                await asyncio.sleep(3.5)
                assert await refused(stub.ResolveSecret(req)) == (grpc.StatusCode.UNAVAILABLE, "VAULT_UNAVAILABLE")
                own.start()  # dev mode starts empty: restore the same role and secret as an operator would
                own.root.sys.enable_auth_method("approle")
                own.root.sys.create_or_update_policy(
                    "coresdk-sidecar", __import__("tests.support.openbao", fromlist=["POLICY"]).POLICY
                )
                own.root.auth.approle.create_or_update_approle("sidecar", token_policies=["coresdk-sidecar"])
                own.root.auth.approle.update_role_id("sidecar", role_id)
                own.root.auth.approle.create_custom_secret_id("sidecar", secret_id)
                own.put("app/db", {"password": "pw2"})
                deadline = time.monotonic() + 15
                value = ""
                while time.monotonic() < deadline:
                    try:
                        value = (await stub.ResolveSecret(req)).value
                        if value == "pw2":
                            break
                    except grpc.aio.AioRpcError:
                        pass
                    await asyncio.sleep(0.3)
                assert value == "pw2"
        finally:
            proc.stop()
    finally:
        own.close()


async def test_mask_encrypt_operator_is_reversible(vault_sidecar: SidecarProcess) -> None:
    import json

    from coresdk.v1 import masking_pb2, masking_pb2_grpc

    async with grpc.aio.insecure_channel(vault_sidecar.target) as ch:
        masking = masking_pb2_grpc.MaskingServiceStub(ch)
        secrets_stub = secrets_pb2_grpc.SecretsServiceStub(ch)
        text = await masking.Mask(masking_pb2.MaskRequest(text="card 4111 1111 1111 1111 ok", policy="encrypt"))
        assert text.text.startswith("card cse:v1:transit:coresdk:vault:v") and text.text.endswith(" ok")
        ciphertext = text.text.split(" ")[1]
        plain = await secrets_stub.Decrypt(
            secrets_pb2.DecryptRequest(ciphertext=ciphertext, associated_data=b"masking/CREDIT_CARD")
        )
        assert plain.plaintext == b"4111 1111 1111 1111"
        doc = await masking.Mask(
            masking_pb2.MaskRequest(json=json.dumps({"note": "mail a@b.io", "nul": "x\u0000y"}), policy="encrypt")
        )
        value = json.loads(doc.json)
        assert value["nul"] == "x\u0000y"
        enc = value["note"].split(" ")[1]
        assert (
            await secrets_stub.Decrypt(
                secrets_pb2.DecryptRequest(ciphertext=enc, associated_data=b"masking/EMAIL_ADDRESS")
            )
        ).plaintext == b"a@b.io"
