"""The issuer's JWKS goes away while a sidecar with verification workers serves: once the last good keys are past
CORESDK_JWKS_MAX_STALE, a batch judged in the workers is refused (UNAVAILABLE, KEYS_UNAVAILABLE) for every token,
never accepted on keys the serving process no longer trusts, and answers again once the JWKS is back; a JWKS that
accepts connections and never answers is the same outage, bounded by CORESDK_JWKS_TIMEOUT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess, trusting
from tests.support.silent_server import SilentServer
from tests.support.tokens import SigningKey, claims

BATCH = 64  # above the size a batch needs to go to the workers


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.rsa("life-outage")


@pytest.fixture
def jwks(key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer(max_age=1)
    server.keys = [key.jwk()]
    yield server
    server.close()


def _batch(key: SigningKey, tag: str) -> auth_pb2.AuthenticateBatchRequest:
    return auth_pb2.AuthenticateBatchRequest(
        requests=[auth_pb2.AuthenticateRequest(token=key.sign(claims(jti=f"{tag}-{i}"))) for i in range(BATCH)]
    )


def _answers(reply: auth_pb2.AuthenticateBatchResponse) -> set[str]:
    return {
        "OK" if r.WhichOneof("result") == "principal" else f"{r.error.code}:{r.error.reason}" for r in reply.results
    }


async def _until(stub: auth_pb2_grpc.AuthServiceStub, key: SigningKey, done: object, within: float) -> set[str]:
    deadline = time.monotonic() + within
    answers: set[str] = set()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        answers = _answers(await stub.AuthenticateBatch(_batch(key, f"b{n}"), timeout=10))
        if done(answers):  # type: ignore[operator]
            break
        await asyncio.sleep(0.2)
    return answers


def test_a_jwks_outage_refuses_worker_batches_and_recovers(jwks: JwksServer, key: SigningKey) -> None:
    sidecar = SidecarProcess(
        trusting(
            jwks.url,
            CORESDK_AUTH_WORKERS="2",
            CORESDK_AUTH_CACHE_SIZE="0",
            CORESDK_JWKS_CACHE_MIN="1",
            CORESDK_JWKS_MAX_STALE="1",
            CORESDK_JWKS_RETRY_MAX="1",
            CORESDK_JWKS_TIMEOUT="1",
        )
    )

    async def run() -> None:
        async with grpc.aio.insecure_channel(sidecar.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            assert _answers(await stub.AuthenticateBatch(_batch(key, "before"), timeout=10)) == {"OK"}
            jwks.down()
            try:
                refused = await _until(stub, key, lambda a: "OK" not in a, 15)
                assert len(refused) == 1 and "KEYS_UNAVAILABLE" in next(iter(refused)), refused
                again = _answers(await stub.AuthenticateBatch(_batch(key, "still-down"), timeout=10))
                assert again == refused
            finally:
                jwks.up()
            assert await _until(stub, key, lambda a: a == {"OK"}, 15) == {"OK"}

    try:
        asyncio.run(run())
    finally:
        assert sidecar.stop() == 0, sidecar.output()


def test_a_jwks_that_never_answers_is_refused_within_the_timeout(key: SigningKey) -> None:
    silent = SilentServer()
    sidecar = SidecarProcess(
        trusting(f"http://127.0.0.1:{silent.port}/jwks", CORESDK_JWKS_TIMEOUT="1", CORESDK_JWKS_RETRY_MAX="1"),
        wait_ready=False,
    )

    async def run() -> None:
        async with grpc.aio.insecure_channel(sidecar.target) as channel:
            await asyncio.wait_for(channel.channel_ready(), 20)
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Authenticate(auth_pb2.AuthenticateRequest(token=key.sign(claims())), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value

    try:
        assert silent.connected.wait(20), sidecar.output()
        asyncio.run(run())
        assert sidecar.health("/readyz")[0] == 503
    finally:
        assert sidecar.stop() == 0, sidecar.output()
        silent.close()
