"""client_credentials grants per second at 32 in flight, SQLite and PostgreSQL, against raw RS256 signing.

Run: .venv/bin/python -m bench.token_endpoint [--requests N]
     .venv/bin/python -m bench.token_endpoint --replicas [--requests N]   (1, 2, 3 replicas on one PostgreSQL)

In replicas mode the in-flight requests are spread over the replicas' own addresses, as kube-proxy spreads
connections over a Service's pods (in the kernel, so no user-space proxy is measured). Every grant pays for the
shared rate limits (two single-statement decisions in PostgreSQL). Indicative only on a shared two-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
import time
from pathlib import Path

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.controlplane import ControlPlaneProcess, ReplicaSet
from tests.support.postgres import PostgresCluster


def raw_signing_rate(n: int) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": "x", "sub": "y", "aud": "z", "scope": "a:read", "jti": "j", "iat": 1, "exp": 2}
    started = time.perf_counter()
    for _ in range(n):
        jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k", "typ": "at+jwt"})
    return n / (time.perf_counter() - started)


UNLIMITED = {
    "CORESDK_RATE_CLIENT_RPS": "1000000",
    "CORESDK_RATE_CLIENT_BURST": "1000000",
    "CORESDK_RATE_IP_RPS": "1000000",
    "CORESDK_RATE_IP_BURST": "1000000",
}


async def grants(
    cp: ControlPlaneProcess, n: int, concurrency: int, urls: list[str] | None = None
) -> tuple[float, float]:
    """Grants per second and p99 latency; worker i talks to urls[i % len(urls)] (default: cp alone)."""
    targets = urls or [cp.url]
    app = cp.create_app(name="bench", scopes=["a:read"], grant_types=["client_credentials"])
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
    latencies: list[float] = []
    remaining = n
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker(url: str) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with session.post(
                    f"{url}/v1/oauth/token", data="grant_type=client_credentials", headers=headers
                ) as r:
                    assert r.status == 200, await r.text()
                    await r.read()
                latencies.append(time.perf_counter() - t0)

        for i in range(50):  # warm up
            async with session.post(
                f"{targets[i % len(targets)]}/v1/oauth/token", data="grant_type=client_credentials", headers=headers
            ) as r:
                await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker(targets[i % len(targets)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return n / elapsed, latencies[int(0.99 * len(latencies))] * 1000


def main(n: int) -> None:
    results = []
    pg = PostgresCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in ("sqlite", "postgres"):
                directory = Path(tmp) / backend
                url = f"sqlite:///{directory / 'cp.db'}" if backend == "sqlite" else pg.new_database()
                cp = ControlPlaneProcess(directory, url, **UNLIMITED)
                try:
                    rate, p99 = asyncio.run(grants(cp, n, 32))
                finally:
                    cp.stop()
                results.append((backend, rate, p99))
    finally:
        pg.stop()
    raw = raw_signing_rate(max(500, n // 2))
    print(f"\n{'case':<48} {'grants/s':>9} {'p99 ms':>8} {'ratio':>14}")
    for backend, rate, p99 in results:
        print(f"{'client_credentials, 32 in flight, ' + backend:<48} {rate:>9.0f} {p99:>8.1f} {rate / raw:>8.2f}x raw")
    print(f"{'raw RS256 signing in-process (PyJWT)':<48} {raw:>9.0f}")
    print("\ntargets: >= 0.6x raw signing and > 1000 grants/s on 2 cores")


def main_replicas(n: int) -> None:
    """1, 2 and 3 replicas on one PostgreSQL database (a fresh one per size)."""
    results = []
    pg = PostgresCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in (1, 2, 3):
                replicas = ReplicaSet(Path(tmp) / f"set-{size}", pg.new_database(), replicas=size, **UNLIMITED)
                try:
                    urls = [cp.url for cp in replicas.replicas]
                    rate, p99 = asyncio.run(grants(replicas.replicas[0], n, 32, urls))
                finally:
                    replicas.stop()
                results.append((size, rate, p99))
    finally:
        pg.stop()
    print(f"\n{'case':<56} {'grants/s':>9} {'p99 ms':>8}")
    for size, rate, p99 in results:
        print(f"{f'client_credentials, 32 in flight, {size} replica(s), PostgreSQL':<56} {rate:>9.0f} {p99:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--replicas", action="store_true", help="1, 2 and 3 replicas on one PostgreSQL")
    args = parser.parse_args()
    if args.replicas:
        main_replicas(args.requests)
    else:
        main(args.requests)
