"""Secrets benchmark against baselines in the same run: cached ResolveSecret at 32 in flight vs an empty unary call;
uncached ResolveSecret (cache TTL 0) vs direct hvac reads of the same secret.

Run: .venv/bin/python -m bench.secrets
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import grpc
import hvac
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.load import run_load
from coresdk.v1 import secrets_pb2, secrets_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.openbao import OpenBao
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import SigningKey


async def load(n: int, concurrency: int, call: Callable[[], Awaitable[object]]) -> float:
    rate, _ = await run_load(n, concurrency, lambda _: call())
    return rate


def sidecar(bao: OpenBao, jwks: JwksServer, ttl: str) -> SidecarProcess:
    return SidecarProcess(
        {
            **trusting(jwks.url),
            **bao.approle_env(),
            "CORESDK_SECRET_PATHS": "app",
            "CORESDK_SECRET_CACHE_TTL": ttl,
            "CORESDK_LOG_LEVEL": "WARNING",
        }
    )


async def main(n: int) -> None:
    bao = OpenBao()
    jwks = JwksServer()
    jwks.keys = [SigningKey.rsa("k").jwk()]
    bao.put("app/db", {"password": "bench"})
    request = secrets_pb2.ResolveSecretRequest(path="app/db", key="password")
    try:
        cached = sidecar(bao, jwks, "3600")
        try:
            async with grpc.aio.insecure_channel(cached.target) as ch:
                stub, health = secrets_pb2_grpc.SecretsServiceStub(ch), health_pb2_grpc.HealthStub(ch)
                await stub.ResolveSecret(request)
                empty = health_pb2.HealthCheckRequest()
                floor = await load(n, 32, lambda: health.Check(empty))
                hit = await load(n, 32, lambda: stub.ResolveSecret(request))
        finally:
            cached.stop()
        uncached = sidecar(bao, jwks, "0")
        try:
            async with grpc.aio.insecure_channel(uncached.target) as ch:
                stub = secrets_pb2_grpc.SecretsServiceStub(ch)
                miss = await load(n // 4, 8, lambda: stub.ResolveSecret(request))
        finally:
            uncached.stop()
        client = hvac.Client(url=bao.addr, token="coresdk-test-root")
        t0 = time.perf_counter()
        for _ in range(n // 4):
            client.secrets.kv.v2.read_secret_version(path="app/db", mount_point="secret", raise_on_deleted_version=True)
        direct = (n // 4) / (time.perf_counter() - t0)
    finally:
        bao.close()
        jwks.close()
    print(f"\n{'case':<52} {'req/s':>8} {'ratio':>16}")
    print(f"{'empty unary call (floor), 32 in flight':<52} {floor:>8.0f}")
    print(f"{'ResolveSecret cached, 32 in flight':<52} {hit:>8.0f} {hit / floor:>10.2f}x floor")
    print(f"{'ResolveSecret uncached (reads Vault), 8 in flight':<52} {miss:>8.0f} {miss / direct:>9.2f}x hvac")
    print(f"{'direct hvac KV v2 reads, sequential':<52} {direct:>8.0f}")
    print("\ntarget: cached >= 0.9x floor")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(main(parser.parse_args().requests))
