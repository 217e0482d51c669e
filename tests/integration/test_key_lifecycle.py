"""Key rotation, removal and IdP outages, against a real sidecar process and a real JWKS server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.grpc_client import error_reason
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import SigningKey, claims


async def outcome(stub: auth_pb2_grpc.AuthServiceStub, token: str) -> str:
    try:
        await stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    except grpc.aio.AioRpcError as err:
        return f"{err.code().name}:{error_reason(err)}"
    return "OK"


async def eventually(stub: auth_pb2_grpc.AuthServiceStub, token: str, expected: str, within: float = 15.0) -> None:
    """Wait (bounded) until the sidecar's answer for token becomes expected."""
    deadline = time.monotonic() + within
    last = ""
    while time.monotonic() < deadline:
        last = await outcome(stub, token)
        if last == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"still {last!r} after {within}s, expected {expected!r}")


# --- unknown kid: refetch once, single-flight, with a cooldown -----------------------------------


@pytest.fixture(scope="module")
def long_cache() -> Iterator[tuple[JwksServer, SidecarProcess, SigningKey]]:
    key = SigningKey.rsa("a")
    jwks = JwksServer(max_age=300)
    jwks.keys = [key.jwk()]
    proc = SidecarProcess(trusting(jwks.url))
    yield jwks, proc, key
    proc.stop()
    jwks.close()


@pytest_asyncio.fixture(scope="module")
async def long_stub(
    long_cache: tuple[JwksServer, SidecarProcess, SigningKey],
) -> AsyncIterator[auth_pb2_grpc.AuthServiceStub]:
    async with grpc.aio.insecure_channel(long_cache[1].target) as ch:
        yield auth_pb2_grpc.AuthServiceStub(ch)


async def test_new_key_works_after_one_refetch_then_cooldown_holds(
    long_cache: tuple[JwksServer, SidecarProcess, SigningKey], long_stub: auth_pb2_grpc.AuthServiceStub
) -> None:
    jwks, _, key_a = long_cache
    assert await outcome(long_stub, key_a.sign(claims())) == "OK"
    key_b = SigningKey.ec("b")
    jwks.keys = [key_a.jwk(), key_b.jwk()]
    fetches = jwks.requests
    # 30 concurrent tokens with the new kid: one refetch serves them all
    tokens = [key_b.sign(claims(jti=f"b{i}")) for i in range(30)]
    results = await asyncio.gather(*(outcome(long_stub, t) for t in tokens))
    assert results == ["OK"] * 30
    assert jwks.requests == fetches + 1

    # within the cooldown, a newer key (or a flood of forged kids) triggers no further fetch
    key_c = SigningKey.rsa("c")
    jwks.keys = [key_a.jwk(), key_b.jwk(), key_c.jwk()]
    forged = [SigningKey.ec("x").sign(claims(), headers={"kid": f"forged-{i}"}) for i in range(3)]
    results = await asyncio.gather(*(outcome(long_stub, t) for t in [key_c.sign(claims()), *forged * 10]))
    assert set(results) == {"UNAUTHENTICATED:UNKNOWN_KID"}
    assert jwks.requests == fetches + 1


# --- removal, outage, stale window and recovery ----------------------------------------------------


@pytest.fixture(scope="module")
def short_cache() -> Iterator[tuple[JwksServer, SidecarProcess, SigningKey, SigningKey]]:
    key_a, key_b = SigningKey.rsa("a"), SigningKey.rsa("b", "PS256")
    jwks = JwksServer(max_age=1)
    jwks.keys = [key_a.jwk(), key_b.jwk()]
    proc = SidecarProcess(
        trusting(
            jwks.url,
            CORESDK_JWKS_CACHE_MIN="1",
            CORESDK_JWKS_MAX_STALE="3",
            CORESDK_JWKS_RETRY_MAX="1",
            CORESDK_JWKS_TIMEOUT="1",
        )
    )
    yield jwks, proc, key_a, key_b
    proc.stop()
    jwks.close()


async def test_removed_key_and_its_cached_results_are_refused(
    short_cache: tuple[JwksServer, SidecarProcess, SigningKey, SigningKey],
) -> None:
    jwks, proc, key_a, key_b = short_cache
    async with grpc.aio.insecure_channel(proc.target) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        token_a = key_a.sign(claims(jti="a-cached"))
        assert await outcome(stub, token_a) == "OK"
        assert await outcome(stub, token_a) == "OK"  # now cached
        jwks.keys = [key_b.jwk()]
        await eventually(stub, token_a, "UNAUTHENTICATED:UNKNOWN_KID")
        assert await outcome(stub, key_b.sign(claims())) == "OK"
        jwks.keys = [key_a.jwk(), key_b.jwk()]
        await eventually(stub, token_a, "OK")


async def test_outage_stale_window_then_unavailable_then_recovery(
    short_cache: tuple[JwksServer, SidecarProcess, SigningKey, SigningKey],
) -> None:
    jwks, proc, _, key_b = short_cache
    async with grpc.aio.insecure_channel(proc.target) as ch:
        stub = auth_pb2_grpc.AuthServiceStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        token = key_b.sign(claims(jti="through-outage"))
        assert await outcome(stub, token) == "OK"
        jwks.down()
        try:
            # inside the stale window the last good keys still verify (fresh 1 s + stale 3 s)
            assert await outcome(stub, key_b.sign(claims(jti="fresh-during-outage"))) == "OK"
            # then: fail closed, for new and for cached tokens alike
            await eventually(stub, token, "UNAVAILABLE:KEYS_UNAVAILABLE", within=10)
            assert await outcome(stub, key_b.sign(claims(jti="new"))) == "UNAVAILABLE:KEYS_UNAVAILABLE"
            assert proc.health("/readyz")[0] == 503
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                status = (await health.Check(health_pb2.HealthCheckRequest(service=""))).status
                if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                await asyncio.sleep(0.1)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            jwks.up()
        await eventually(stub, token, "OK", within=15)
        assert proc.health("/readyz")[0] == 200
        metrics = proc.health("/metrics")[1].decode()
        assert 'coresdk_jwks_fetches_total{issuer="https://issuer.test",result="error",trigger="refresh"}' in metrics
