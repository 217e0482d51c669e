"""client_credentials grants per second at 32 in flight, SQLite and PostgreSQL, against raw RS256 signing.

Run: .venv/bin/python -m bench.token_endpoint [--requests N] [--algs RS256,PS256,ES256] [--client wrk|aiohttp]
     .venv/bin/python -m bench.token_endpoint --replicas [--requests N]   (1, 2, 3 replicas on one PostgreSQL)
     .venv/bin/python -m bench.token_endpoint --profile   (SQLite and PostgreSQL RS256 again, ~5 s each, py-spy)

Each signing algorithm (CORESDK_SIGNING_ALG) runs on both stores with an initial key of its kind (RSA-2048 for
RS256 and PS256, P-256 for ES256); every ratio is against raw in-process RS256 signing (PyJWT, one thread, the same
RSA-2048 size) measured just before and just after that case (the ratio is against their mean, so both sides
see the same background load on these shared cores), and the raw rate of each other algorithm is printed below.

The load generator runs on the same two cores as the control plane, so what it costs is taken from the server:
`--client wrk` (the default when Debian's wrk is installed) is wrk with one thread and 32 keep-alive HTTP/1.1
connections sending the same POST (client_secret_basic, form body), each case for about as long as --requests
grants take, and any answer other than 200 fails the run; `--client aiohttp` is the aiohttp client in this process
(32 workers on keep-alive connections, n grants), the load generator of the numbers measured before wrk. Every
case prints the CPU the server (its threads and signer processes, from /proc) and the load generator took per
grant. The raw signing baseline is the same in both.

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
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bench.load import cpu_seconds
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
    server_cpu_ms: float  # control-plane CPU (all its threads and its signer processes) per grant
    client_cpu_ms: float  # load generator CPU per grant


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
        server0, client0 = cpu_seconds(cp.proc.pid), time.process_time()
        await asyncio.gather(*(worker(targets[i % len(targets)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(cp.proc.pid) - server0, time.process_time() - client0
    done = len(latencies)
    latencies.sort()
    return Run(done / elapsed, latencies[int(0.99 * done)] * 1000, 1000 * server_cpu / done, 1000 * client_cpu / done)


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Authorization"] = "Basic {basic}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""
_WRK_LATENCY = re.compile(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, script: Path, seconds: float, concurrency: int) -> tuple[str, float]:
    """wrk's report and the CPU seconds it used (one thread, `concurrency` keep-alive connections)."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed:\n{out}")
    return out, usage.ru_utime + usage.ru_stime


def grants_wrk(
    cp: ControlPlaneProcess, seconds: float, concurrency: int, on_start: Callable[[], object] | None = None
) -> Run:
    """The same requests from wrk (HTTP/1.1, keep-alive, `concurrency` connections each with one request in
    flight): every answer must be a 200, or the run fails."""
    assert cp.proc is not None
    app = cp.create_app(name="bench", scopes=["a:read"], grant_types=["client_credentials"])
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    url = f"{cp.url}/v1/oauth/token"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "grant.lua"
        script.write_text(WRK_SCRIPT.format(basic=basic))
        _wrk(url, script, 1, concurrency)  # warm up
        if on_start is not None:
            on_start()
        server0 = cpu_seconds(cp.proc.pid)
        out, client_cpu = _wrk(url, script, seconds, concurrency)
        server_cpu = cpu_seconds(cp.proc.pid) - server0
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"grants failed under wrk:\n{out}")
    done = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p99 = _WRK_LATENCY.search(out)
    assert p99 is not None, out
    return Run(rate, float(p99[1]) * _UNIT_MS[p99[2]], 1000 * server_cpu / done, 1000 * client_cpu / done)


def load(client: str, cp: ControlPlaneProcess, n: int, seconds: float | None = None, **kw: Any) -> Run:
    """One case's load: wrk for `seconds` (default: about as long as n grants take), or the aiohttp client."""
    if client == "wrk":
        return grants_wrk(cp, seconds or max(3.0, n / 1000), 32, **kw)
    return asyncio.run(grants(cp, n, 32, seconds=seconds, **kw))


def _control_plane(pg: PostgresCluster, root: Path, backend: str, alg: str) -> ControlPlaneProcess:
    """A fresh control plane on its own SQLite file or PostgreSQL database, with an initial key for `alg`."""
    directory = root / f"{backend}-{alg}"
    url = f"sqlite:///{directory / 'cp.db'}" if backend == "sqlite" else pg.new_database()
    env = {**UNLIMITED, "CORESDK_SIGNING_ALG": alg}
    env["CORESDK_SIGNING_KEY_PATH"] = str(_initial_key(directory, alg))
    return ControlPlaneProcess(directory, url, **env)


LOAD_GENERATORS = {
    "aiohttp": "aiohttp client in this process (keep-alive, 32 connections)",
    "wrk": "wrk, one thread, 32 keep-alive HTTP/1.1 connections, the same POST (a Lua script sets method, body and"
    " headers)",
}


def default_client() -> str:
    return "wrk" if shutil.which("wrk") else "aiohttp"


def main(n: int, algs: tuple[str, ...], client: str) -> None:
    """Each case between two raw RS256 measurements (its ratio is against their mean): the background load the
    other agents on these cores put on the case is the load its baseline saw, not the load of a moment later."""
    results = []
    m = max(500, n // 2)
    pg = PostgresCluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for alg in algs:
                for backend in ("sqlite", "postgres"):
                    cp = _control_plane(pg, Path(tmp), backend, alg)
                    try:
                        before = raw_signing_rate(m)
                        run = load(client, cp, n)
                        after = raw_signing_rate(m)
                    finally:
                        cp.stop()
                    results.append((alg, backend, run, (before + after) / 2))
    finally:
        pg.stop()
    raw = {alg: raw_signing_rate(m, alg) for alg in algs if alg != "RS256"}
    print(f"\nload generator: {LOAD_GENERATORS[client]}")
    print(
        f"\n{'case':<56} {'grants/s':>9} {'p99 ms':>8} {'ratio':>16} {'raw RS256/s':>12}"
        f" {'CPU ms/grant server':>20} {'client':>7}"
    )
    for alg, backend, run, around in results:
        case = f"client_credentials, 32 in flight, {backend}, {alg}"
        print(
            f"{case:<56} {run.rate:>9.0f} {run.p99_ms:>8.1f} {run.rate / around:>8.2f}x raw RS256 {around:>12.0f}"
            f" {run.server_cpu_ms:>20.3f} {run.client_cpu_ms:>7.3f}"
        )
    rs256 = [around for *_, around in results]
    print(
        f"{'raw RS256 signing in-process (PyJWT, one thread)':<56} {sum(rs256) / len(rs256):>9.0f}"
        f"   ({1000 * len(rs256) / sum(rs256):.3f} ms each; mean of the measurements around the cases)"
    )
    for alg, rate in raw.items():
        print(f"{f'raw {alg} signing in-process (PyJWT, one thread)':<56} {rate:>9.0f}   ({1000 / rate:.3f} ms each)")
    print("\ntargets: >= 0.6x raw RS256 signing and > 1000 grants/s on 2 cores")


PROFILE_RATE = 100  # samples/s: py-spy --native stops the process per sample; at 400/s a grant takes 50x longer


def _sample(recordings: list[Recording], pid: int, seconds: float) -> None:
    recordings.append(record(pid, seconds, rate=PROFILE_RATE))


def main_profile(seconds: float, client: str) -> None:
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
                    run = load(client, cp, 0, seconds=seconds, on_start=start)
                finally:
                    cp.stop()
                title = (
                    f"control plane, {backend} RS256, 32 in flight: {run.rate:.0f} grants/s under py-spy, CPU per grant"
                    f" {run.server_cpu_ms:.3f} ms server, {run.client_cpu_ms:.3f} ms load generator"
                )
                reports.append(report(title, collect(recordings[0]), top=16))
    finally:
        pg.stop()
    print(f"\nload generator: {LOAD_GENERATORS[client]}")
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
    parser.add_argument(
        "--client",
        choices=sorted(LOAD_GENERATORS),
        default=default_client(),
        help="load generator (default: wrk if installed)",
    )
    parser.add_argument("--algs", default=",".join(ALGS), help="signing algorithms to run, comma-separated")
    args = parser.parse_args()
    chosen = tuple(a.strip() for a in args.algs.split(",") if a.strip())
    if not chosen or any(a not in ALGS for a in chosen):
        parser.error(f"--algs takes a comma-separated subset of {', '.join(ALGS)}")
    if args.profile:
        main_profile(args.seconds, args.client)
    elif args.replicas:
        main_replicas(args.requests)
    else:
        main(args.requests, chosen, args.client)
