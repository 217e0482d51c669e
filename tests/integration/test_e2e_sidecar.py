"""End to end: tokens issued by the control plane are judged by the sidecar over gRPC."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from coresdk.client import error_reason
from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.controlplane import ADMIN_TOKEN, ControlPlaneProcess
from tests.support.oauth import REDIRECT, full_flow
from tests.support.processes import SidecarProcess


@pytest.fixture(scope="module")
def cp_sidecar(cp: ControlPlaneProcess) -> Iterator[SidecarProcess]:
    proc = SidecarProcess(cp.sidecar_env(CORESDK_REQUIRE_AT_JWT_TYP="true", CORESDK_REVOCATION_POLL="0.5"))
    yield proc
    proc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def stub(cp_sidecar: SidecarProcess) -> AsyncIterator[auth_pb2_grpc.AuthServiceStub]:
    async with grpc.aio.insecure_channel(cp_sidecar.target) as ch:
        yield auth_pb2_grpc.AuthServiceStub(ch)


async def outcome(stub: auth_pb2_grpc.AuthServiceStub, token: str) -> str:
    try:
        await stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    except grpc.aio.AioRpcError as err:
        return f"{err.code().name}:{error_reason(err)}"
    return "OK"


async def test_issued_token_accepted_then_refused_within_5s_of_revocation(
    cp: ControlPlaneProcess, stub: auth_pb2_grpc.AuthServiceStub, user: str
) -> None:
    app = cp.create_app(name="e2e", grant_types=["authorization_code", "refresh_token"], redirect_uris=[REDIRECT])
    client, token = full_flow(cp, app, user)
    principal = await stub.Authenticate(auth_pb2.AuthenticateRequest(token=token["access_token"]))
    assert principal.subject == user
    assert principal.client_id == app["client_id"]
    assert principal.tenant_id == "tenant-a"
    assert list(principal.scopes) == ["orders:read"]
    revoked_at = time.monotonic()
    assert (
        client.revoke_token(
            f"{cp.url}/v1/oauth/revoke", token=token["access_token"], token_type_hint="access_token"
        ).status_code
        == 200
    )
    while await outcome(stub, token["access_token"]) != "UNAUTHENTICATED:TOKEN_REVOKED":
        assert time.monotonic() - revoked_at < 5, "revocation did not reach the sidecar within 5 s"
        await asyncio.sleep(0.1)


async def test_key_rotation_old_and_new_tokens_both_validate(
    cp: ControlPlaneProcess, stub: auth_pb2_grpc.AuthServiceStub
) -> None:
    app = cp.create_app(name="e2e-keys", scopes=["k:read"], grant_types=["client_credentials"])

    def token() -> str:
        return cp.client_token(app)

    old = token()
    assert await outcome(stub, old) == "OK"
    rotate = subprocess.run(
        [str(Path(sys.executable).parent / "coresdk"), "keys", "rotate", "--cp-url", cp.url],
        env={**os.environ, "CPOD_ADMIN_TOKEN": ADMIN_TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotate.returncode == 0, rotate.stderr
    assert '"active_kid"' in rotate.stdout
    new = token()
    assert await outcome(stub, new) == "OK"  # unknown kid → one refetch → the new key
    assert await outcome(stub, old) == "OK"


async def test_sidecar_refuses_everything_when_revocation_feed_is_stale(cp: ControlPlaneProcess, tmp_path: Any) -> None:
    """Fail closed: a sidecar whose revocation feed cannot be read does not become ready and accepts nothing."""
    proc = SidecarProcess(
        cp.sidecar_env(CORESDK_CP_TOKEN="wrong-credential-0123456789abcdef0123456789"), wait_ready=False
    )
    try:
        app = cp.create_app(name="e2e-stale", scopes=["k:read"], grant_types=["client_credentials"])
        token = cp.client_token(app)
        # Wait until the keys are loaded, so that the refusal below can only come from the revocation feed.
        deadline = time.monotonic() + 20
        ready: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                status, body = proc.health("/readyz")
                ready = json.loads(body)
                if status == 503 and ready.get("checks", {}).get(cp.url) is True:
                    break
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.1)
        assert ready.get("checks") == {cp.url: True, "revocations": False, "audit": True}
        async with grpc.aio.insecure_channel(proc.target) as ch:
            assert await outcome(auth_pb2_grpc.AuthServiceStub(ch), token) == "UNAVAILABLE:REVOCATIONS_UNAVAILABLE"
    finally:
        proc.stop()
