"""Benchmark of the gateway against the same upstream called directly, and of Authorize built-in vs with Rego.

Baseline: the demo upstream (a separate process) called directly over HTTP with the same client, in the same run,
in slices interleaved with the two faces (direct, gateway, nginx, direct, ...) so that all see the same background.
Through the gateway every request is authenticated and authorized in process by the engine (coresdk/engine.py),
quota-checked, audited (one fsync'd record, group-committed) and proxied. Through nginx (config/nginx/ as shipped,
Debian's nginx), nginx proxies and asks the gateway in authz mode for each decision (auth_request), audited the
same way.
Authorize: the same decisions on two sidecars, one with the built-in rules only and one with config/policies in
the in-process Rego engine, against an empty unary call as floor.
Run: .venv/bin/python -m bench.gateway [--requests N] [--concurrency C] [--no-audit] [--profile]
--profile: afterwards, the gateway case and the nginx (authz mode) case run again for ~5 s each, at C and at 1 in
flight, while py-spy samples the gateway process (bench.where), and where its time goes is printed by owner.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.authenticate import pct
from bench.load import run_interleaved, run_load
from bench.where import Profile, collect, record, report
from coresdk.v1 import common_pb2, policy_pb2, policy_pb2_grpc
from tests.support.gateway import GatewayProcess
from tests.support.jwks_server import JwksServer
from tests.support.nginx import NginxProcess
from tests.support.ports import free_port
from tests.support.processes import ROOT, SidecarProcess, trusting
from tests.support.tokens import SigningKey, claims


class DemoUpstream:
    """The upstream in its own process, so the load generator does not share an event loop with it."""

    def __init__(self) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CORESDK_DEMO_UPSTREAM_ADDR": f"127.0.0.1:{self.port}"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.demo_upstream"], env=env, cwd=ROOT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("demo upstream did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def http_cases(
    faces: dict[str, tuple[str, dict[str, str]]], n: int, concurrency: int
) -> dict[str, tuple[float, list[float]]]:
    """Each face n calls, measured in interleaved slices (direct, gateway, nginx, direct, ...), so the baseline and
    the faces compared with it see the same background load on a shared machine."""
    async with contextlib.AsyncExitStack() as stack:
        calls = {}
        for name, (url, headers) in faces.items():
            session = await stack.enter_async_context(
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
            )

            async def call(
                _: int, session: aiohttp.ClientSession = session, url: str = url, headers: dict[str, str] = headers
            ) -> None:
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url} answered {resp.status}")

            await run_load(min(200, n), concurrency, call)  # warm up connections and caches
            calls[name] = call
        return await run_interleaved(n, concurrency, calls)


def busy(profile: Profile) -> Profile:
    """Without the samples of threads that were only waiting (an idle thread pool's workers park in threading.py)."""
    owners = Counter({k: v for k, v in profile.owners.items() if k != "threads"})
    return Profile(sum(owners.values()), owners, profile.ours)


async def profiled_case(url: str, headers: dict[str, str], concurrency: int, pid: int, title: str) -> str:
    """The case again for ~5 s while py-spy samples the process `pid`; where its time goes, by owner."""
    seconds = 5.0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(_: int) -> None:
            async with session.get(url, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url} answered {resp.status}")

        await run_load(200, concurrency, call)
        recording = record(pid, seconds, rate=100)  # a low rate: py-spy --native stops the process per sample
        await asyncio.sleep(0.3)  # py-spy attaches
        done = 0
        started = time.perf_counter()
        latencies: list[float] = []
        while time.perf_counter() - started < seconds + 0.5:
            _, lat = await run_load(500, concurrency, call)
            latencies.extend(lat)
            done += 500
        rate = done / (time.perf_counter() - started)
        profile = busy(await asyncio.to_thread(collect, recording))
    summary = f"{rate:.0f} req/s, p50 {pct(latencies, 0.5):.0f} µs, p99 {pct(latencies, 0.99):.0f} µs"
    return report(f"{title}, {concurrency} in flight ({summary}; idle threads left out)", profile, top=14)


async def authorize_case(target: str, n: int) -> tuple[float, float, list[float]]:
    amr = struct_pb2.Struct()
    amr.update({"amr": ["pwd", "mfa"]})  # so that config/policies allows the delete: both sidecars allow
    principal = common_pb2.Principal(
        subject="user-42",
        roles=["operator"],
        scopes=["tasks:delete"],
        tenant_id="tenant-a",
        client_id="client-1",
        claims=amr,
    )
    request = policy_pb2.AuthorizeRequest(principal=principal, resource="tasks", action="delete", tenant_id="tenant-a")
    async with grpc.aio.insecure_channel(target) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        empty = health_pb2.HealthCheckRequest()
        await run_load(200, 32, lambda i: health.Check(empty))
        floor, _ = await run_load(n, 32, lambda i: health.Check(empty))
        await run_load(200, 32, lambda i: stub.Authorize(request))
        rate, lat = await run_load(n, 32, lambda i: stub.Authorize(request))
        assert (await stub.Authorize(request)).allowed
    return rate, floor, lat


def bench_routes() -> Path:
    """config/routes.json with a plan no run exhausts: the quota is checked on every request as shipped, but a
    benchmark measures what a request costs, not how many the example plan allows (1000/s, burst 10000)."""
    routes = json.loads((ROOT / "config" / "routes.json").read_text())
    routes["plans"] = {name: {"requests_per_minute": 60_000_000, "burst": 1_000_000} for name in routes["plans"]}
    path = Path(tempfile.mkdtemp(prefix="coresdk-bench-")) / "routes.json"
    path.write_text(json.dumps(routes))
    return path


async def main(n: int, concurrency: int, audit: bool, profile: bool = False) -> None:
    key = SigningKey.rsa("bench", "RS256")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    base = {
        **trusting(jwks.url),
        "CORESDK_LOG_LEVEL": "WARNING",
    }
    sidecar = SidecarProcess(base)
    rego_sidecar = SidecarProcess(
        {
            **base,
            "CORESDK_POLICY_FILE": str(ROOT / "config" / "policies"),
            "CORESDK_POLICY_DATA": str(ROOT / "config" / "policies" / "data.json"),
        }
    )
    upstream = DemoUpstream()
    routes = bench_routes()
    gateway = GatewayProcess(
        upstream,
        sidecar,
        routes_file=routes,
        env={"CORESDK_LOG_LEVEL": "WARNING", "CORESDK_GATEWAY_AUDIT": "true" if audit else "false"},
    )
    authz = GatewayProcess(
        upstream,
        sidecar,
        routes_file=routes,
        env={
            "CORESDK_LOG_LEVEL": "WARNING",
            "CORESDK_GATEWAY_AUDIT": "true" if audit else "false",
            "CORESDK_GATEWAY_MODE": "authz",
            "CORESDK_TRUSTED_PROXIES": "127.0.0.1/32",
        },
    )
    nginx = NginxProcess(authz.port, upstream.port, free_port())
    headers = {"Authorization": f"Bearer {key.sign(claims())}"}
    try:
        faces = {
            "direct": (f"http://127.0.0.1:{upstream.port}/v1/orders", {}),
            "gateway": (f"{gateway.url}/v1/orders", headers),
            "nginx": (f"{nginx.url}/v1/orders", headers),
        }
        many = await http_cases(faces, n, concurrency)
        one = await http_cases(faces, n // 2, 1)
        (direct_rate, direct_lat), (gw_rate, gw_lat), (ngx_rate, ngx_lat) = many.values()
        (one_direct, one_direct_lat), (one_gw, one_gw_lat), (one_ngx, one_ngx_lat) = one.values()
        builtin, floor_a, builtin_lat = await authorize_case(sidecar.target, n)
        rego, floor_b, rego_lat = await authorize_case(rego_sidecar.target, n)
        profiles = []
        if profile:
            for c in (concurrency, 1):
                profiles.append(
                    await profiled_case(f"{gateway.url}/v1/orders", headers, c, gateway.proc.pid, "the gateway")
                )
                profiles.append(
                    await profiled_case(
                        f"{nginx.url}/v1/orders", headers, c, authz.proc.pid, "the gateway in authz mode behind nginx"
                    )
                )
    finally:
        nginx.stop()
        authz.stop()
        gateway.stop()
        upstream.stop()
        sidecar.stop()
        rego_sidecar.stop()
        jwks.close()

    print(f"\n{'case':<48} {'req/s':>8} {'p50 µs':>8} {'p99 µs':>8} {'ratio':>16}")
    rows = [
        (f"upstream direct, {concurrency} in flight", direct_rate, direct_lat, ""),
        (
            f"through the gateway, {concurrency} in flight",
            gw_rate,
            gw_lat,
            f"{gw_rate / direct_rate:.2f}x throughput",
        ),
        ("upstream direct, 1 in flight", one_direct, one_direct_lat, ""),
        (
            "through the gateway, 1 in flight",
            one_gw,
            one_gw_lat,
            f"{pct(one_gw_lat, 0.99) / pct(one_direct_lat, 0.99):.2f}x p99 latency",
        ),
        (
            f"through nginx + decision endpoint, {concurrency} in flight",
            ngx_rate,
            ngx_lat,
            f"{ngx_rate / direct_rate:.2f}x throughput",
        ),
        (
            "through nginx + decision endpoint, 1 in flight",
            one_ngx,
            one_ngx_lat,
            f"{pct(one_ngx_lat, 0.99) / pct(one_direct_lat, 0.99):.2f}x p99 latency",
        ),
        ("Authorize built-in, 32 in flight", builtin, builtin_lat, f"{builtin / floor_a:.2f}x floor"),
        ("Authorize built-in + Rego, 32 in flight", rego, rego_lat, f"{rego / floor_b:.2f}x floor"),
    ]
    for name, rate, lat, ratio in rows:
        print(f"{name:<48} {rate:>8.0f} {pct(lat, 0.5):>8.0f} {pct(lat, 0.99):>8.0f} {ratio:>16}")
    print(
        f"\np99 latency through the gateway at {concurrency} in flight: "
        f"{pct(gw_lat, 0.99) / pct(direct_lat, 0.99):.2f}x direct"
    )
    print(
        "targets: in-process gateway >= 0.35x throughput at 16 in flight and p99 <= 4x at 1 in flight; "
        f"nginx mode >= 0.5x and <= 3x (n={n})"
    )
    for text in profiles:
        print(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-audit", action="store_true", help="gateway without its per-request audit record")
    parser.add_argument(
        "--profile", action="store_true", help="then sample the gateway with py-spy (bench.where) while each face runs"
    )
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency, not args.no_audit, args.profile))
