"""client_credentials grants per second at 32 in flight, SQLite and PostgreSQL, against raw RS256 signing.

Run: .venv/bin/python -m bench.token_endpoint [--requests N] [--algs RS256,PS256,ES256]
     .venv/bin/python -m bench.token_endpoint --replicas [--requests N]   (1, 2, 3 replicas on one PostgreSQL)
     .venv/bin/python -m bench.token_endpoint --profile   (SQLite and PostgreSQL RS256 again, ~5 s each, py-spy)

Each signing algorithm (CORESDK_SIGNING_ALG) runs on both stores with an initial key of its kind (RSA-2048 for
RS256 and PS256, P-256 for ES256); every ratio is against raw in-process RS256 signing (PyJWT, one thread, the same
RSA-2048 size) measured in the same run, and the raw rate of each algorithm is printed beside it.

The load generator is an aiohttp client (keep-alive, one connection per in-flight request) in this process, on
the same cores as the control plane; every case prints the CPU both took per grant (the server's from
/proc/<pid>/stat, the client's from this process's own clock), so what the client takes from the server is known.

With --profile the SQLite and PostgreSQL RS256 cases run again for about five seconds each while bench.where
samples the control-plane process (py-spy --native), and the time is charged to its owner (our code, aiohttp,
cryptography, asyncio, the database driver...).

In replicas mode the in-flight requests are spread over the replicas' own addresses, as kube-proxy spreads
connections over a Service's pods (in the kernel, so no user-space proxy is measured). Every grant pays for the
shared rate limits (two single-statement decisions in PostgreSQL). Indicative only on a shared two-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench.where import Recording, collect, record, report
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


@dataclass(frozen=True)
class Run:
    rate: float  # grants per second
    p99_ms: float
    server_cpu_ms: float  # control-plane CPU (all its threads) per grant
    client_cpu_ms: float  # load generator CPU per grant


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all threads together (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def grants(
    cp: ControlPlaneProcess,
    n: int,
    concurrency: int,
    urls: list[str] | None = None,
    seconds: float | None = None,
    on_start: Callable[[], object] | None = None,
) -> Run:
    """Grants per second, p99 latency and CPU per grant; worker i talks to urls[i % len(urls)] (default: cp alone).
    With `seconds` the load runs for that long instead of n grants; on_start() is called when it starts."""
    targets = urls or [cp.url]
    assert cp.proc is not None
    app = cp.create_app(name="bench", scopes=["a:read"], grant_types=["client_credentials"])
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
    latencies: list[float] = []
    remaining = n if seconds is None else 1 << 60
    deadline = float("inf")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker(url: str) -> None:
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < deadline:
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
        if on_start is not None:
            on_start()
        started = time.perf_counter()
        if seconds is not None:
            deadline = started + seconds
        server0, client0 = _cpu_seconds(cp.proc.pid), time.process_time()
        await asyncio.gather(*(worker(targets[i % len(targets)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = _cpu_seconds(cp.proc.pid) - server0, time.process_time() - client0
    done = len(latencies)
    latencies.sort()
    return Run(done / elapsed, latencies[int(0.99 * done)] * 1000, 1000 * server_cpu / done, 1000 * client_cpu / done)


def _control_plane(pg: PostgresCluster, root: Path, backend: str, alg: str) -> ControlPlaneProcess:
    """A fresh control plane on its own SQLite file or PostgreSQL database, with an initial key for `alg`."""
    directory = root / f"{backend}-{alg}"
    url = f"sqlite:///{directory / 'cp.db'}" if backend == "sqlite" else pg.new_database()
    env = {**UNLIMITED, "CORESDK_SIGNING_ALG": alg}
    env["CORESDK_SIGNING_KEY_PATH"] = str(_initial_key(directory, alg))
    return ControlPlaneProcess(directory, url, **env)


LOAD_GENERATOR = "aiohttp client in this process (keep-alive, 32 connections)"


def main(n: int, algs: tuple[str, ...]) -> None:
    results = []
    pg = PostgresCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for alg in algs:
                for backend in ("sqlite", "postgres"):
                    cp = _control_plane(pg, Path(tmp), backend, alg)
                    try:
                        run = asyncio.run(grants(cp, n, 32))
                    finally:
                        cp.stop()
                    results.append((alg, backend, run))
    finally:
        pg.stop()
    raw = {alg: raw_signing_rate(max(500, n // 2), alg) for alg in dict.fromkeys(("RS256", *algs))}
    print(f"\nload generator: {LOAD_GENERATOR}")
    print(f"\n{'case':<56} {'grants/s':>9} {'p99 ms':>8} {'ratio':>16} {'CPU ms/grant server':>20} {'client':>7}")
    for alg, backend, run in results:
        case = f"client_credentials, 32 in flight, {backend}, {alg}"
        print(
            f"{case:<56} {run.rate:>9.0f} {run.p99_ms:>8.1f} {run.rate / raw['RS256']:>8.2f}x raw RS256"
            f" {run.server_cpu_ms:>20.3f} {run.client_cpu_ms:>7.3f}"
        )
    for alg, rate in raw.items():
        print(f"{f'raw {alg} signing in-process (PyJWT, one thread)':<56} {rate:>9.0f}   ({1000 / rate:.3f} ms each)")
    print("\ntargets: >= 0.6x raw RS256 signing and > 1000 grants/s on 2 cores")


PROFILE_RATE = 100  # samples/s: py-spy --native stops the process per sample; at 400/s a grant takes 50x longer


def _sample(recordings: list[Recording], pid: int, seconds: float) -> None:
    recordings.append(record(pid, seconds, rate=PROFILE_RATE))


def main_profile(seconds: float) -> None:
    """SQLite and PostgreSQL RS256 again for `seconds` each, the control plane sampled by py-spy meanwhile."""
    reports = []
    pg = PostgresCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in ("sqlite", "postgres"):
                cp = _control_plane(pg, Path(tmp), backend, "RS256")
                assert cp.proc is not None
                recordings: list[Recording] = []
                try:
                    start = functools.partial(_sample, recordings, cp.proc.pid, seconds)
                    run = asyncio.run(grants(cp, 0, 32, seconds=seconds, on_start=start))
                finally:
                    cp.stop()
                title = (
                    f"control plane, {backend} RS256, 32 in flight: {run.rate:.0f} grants/s under py-spy, CPU per grant"
                    f" {run.server_cpu_ms:.3f} ms server, {run.client_cpu_ms:.3f} ms load generator"
                )
                reports.append(report(title, collect(recordings[0]), top=16))
    finally:
        pg.stop()
    print(f"\nload generator: {LOAD_GENERATOR}")
    for text in reports:
        print(text)


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
                    run = asyncio.run(grants(replicas.replicas[0], n, 32, urls))
                finally:
                    replicas.stop()
                results.append((size, run.rate, run.p99_ms))
    finally:
        pg.stop()
    print(f"\n{'case':<56} {'grants/s':>9} {'p99 ms':>8}")
    for size, rate, p99 in results:
        print(f"{f'client_credentials, 32 in flight, {size} replica(s), PostgreSQL':<56} {rate:>9.0f} {p99:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--replicas", action="store_true", help="1, 2 and 3 replicas on one PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="sample the control plane (SQLite, PostgreSQL RS256)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each profiled case")
    parser.add_argument("--algs", default=",".join(ALGS), help="signing algorithms to run, comma-separated")
    args = parser.parse_args()
    chosen = tuple(a.strip() for a in args.algs.split(",") if a.strip())
    if not chosen or any(a not in ALGS for a in chosen):
        parser.error(f"--algs takes a comma-separated subset of {', '.join(ALGS)}")
    if args.profile:
        main_profile(args.seconds)
    elif args.replicas:
        main_replicas(args.requests)
    else:
        main(args.requests, chosen)
