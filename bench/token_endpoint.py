"""client_credentials grants per second at 32 in flight, SQLite and PostgreSQL, against raw RS256 signing.

Run: .venv/bin/python -m bench.token_endpoint [--requests N] [--algs RS256,PS256,ES256]
     .venv/bin/python -m bench.token_endpoint --replicas [--requests N]   (1, 2, 3 replicas on one PostgreSQL)

Each signing algorithm (CORESDK_SIGNING_ALG) runs on both stores with an initial key of its kind (RSA-2048 for
RS256 and PS256, P-256 for ES256); every ratio is against raw in-process RS256 signing (PyJWT, one thread, the same
RSA-2048 size) measured in the same run, and the raw rate of each algorithm is printed beside it.

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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.controlplane import ControlPlaneProcess, ReplicaSet
from tests.support.postgres import PostgresCluster

ALGS = ("RS256", "PS256", "ES256")


def _private_key(alg: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def raw_signing_rate(n: int, alg: str = "RS256") -> float:
    key = _private_key(alg)
    claims = {"iss": "x", "sub": "y", "aud": "z", "scope": "a:read", "jti": "j", "iat": 1, "exp": 2}
    started = time.perf_counter()
    for _ in range(n):
        jwt.encode(claims, key, algorithm=alg, headers={"kid": "k", "typ": "at+jwt"})
    return n / (time.perf_counter() - started)


def _initial_key(directory: Path, alg: str) -> Path:
    """The control plane's initial key file, of the kind the algorithm needs."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "initial-signing-key.pem"
    pem = _private_key(alg).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


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


def main(n: int, algs: tuple[str, ...]) -> None:
    results = []
    pg = PostgresCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for alg in algs:
                for backend in ("sqlite", "postgres"):
                    directory = Path(tmp) / f"{backend}-{alg}"
                    url = f"sqlite:///{directory / 'cp.db'}" if backend == "sqlite" else pg.new_database()
                    env = {**UNLIMITED, "CORESDK_SIGNING_ALG": alg}
                    env["CORESDK_SIGNING_KEY_PATH"] = str(_initial_key(directory, alg))
                    cp = ControlPlaneProcess(directory, url, **env)
                    try:
                        rate, p99 = asyncio.run(grants(cp, n, 32))
                    finally:
                        cp.stop()
                    results.append((alg, backend, rate, p99))
    finally:
        pg.stop()
    raw = {alg: raw_signing_rate(max(500, n // 2), alg) for alg in dict.fromkeys(("RS256", *algs))}
    print(f"\n{'case':<56} {'grants/s':>9} {'p99 ms':>8} {'ratio':>16}")
    for alg, backend, rate, p99 in results:
        case = f"client_credentials, 32 in flight, {backend}, {alg}"
        print(f"{case:<56} {rate:>9.0f} {p99:>8.1f} {rate / raw['RS256']:>8.2f}x raw RS256")
    for alg, rate in raw.items():
        print(f"{f'raw {alg} signing in-process (PyJWT, one thread)':<56} {rate:>9.0f}")
    print("\ntargets: >= 0.6x raw RS256 signing and > 1000 grants/s on 2 cores")


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
    parser.add_argument("--algs", default=",".join(ALGS), help="signing algorithms to run, comma-separated")
    args = parser.parse_args()
    chosen = tuple(a.strip() for a in args.algs.split(",") if a.strip())
    if not chosen or any(a not in ALGS for a in chosen):
        parser.error(f"--algs takes a comma-separated subset of {', '.join(ALGS)}")
    if args.replicas:
        main_replicas(args.requests)
    else:
        main(args.requests, chosen)
