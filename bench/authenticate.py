"""Benchmark of AuthService against baselines measured in the same run.

Floor: an empty unary call (grpc.health.v1 Check) on the same sidecar process over the same channel.
Raw: in-process RS256 signature verification (cryptography) of the same tokens.
Batch: AuthenticateBatch with 500 unique tokens per message, two messages in flight; then the same on a second
sidecar with CORESDK_AUTH_WORKERS=2 (cache misses judged in two worker processes).
Run: .venv/bin/python -m bench.authenticate [--requests N] [--profile]
--profile: afterwards, a second sidecar with its cache off is sampled by py-spy (bench.where) while unique tokens
are authenticated unary (32 in flight) and in batches, to show where the server's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.load import run_interleaved, run_load
from bench.where import collect, record, report
from coresdk.jose.b64 import b64url_decode
from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import SigningKey, claims


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def raw_verify_rate(key: SigningKey, tokens: list[str]) -> float:
    pub = key.private.public_key()
    pre = [(t.rsplit(".", 1)[0].encode(), b64url_decode(t.rsplit(".", 1)[1])) for t in tokens]
    started = time.perf_counter()
    for signing_input, sig in pre:
        pub.verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
    return len(pre) / (time.perf_counter() - started)


async def main(n: int, profile: bool) -> None:
    key = SigningKey.rsa("bench", "RS256")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    proc = SidecarProcess(
        {
            **trusting(jwks.url),
            "CORESDK_LOG_LEVEL": "WARNING",
            "CORESDK_AUTH_CACHE_SIZE": str(5 * n),
        }
    )
    print(f"generating {5 * n} tokens ...", flush=True)
    batches = [[key.sign(claims(jti=f"{b}-{i}")) for i in range(n)] for b in range(5)]
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            empty = health_pb2.HealthCheckRequest()
            cached = key.sign(claims(jti="cached"))
            await auth.Authenticate(auth_pb2.AuthenticateRequest(token=cached))
            for _ in range(200):  # warm up
                await health.Check(empty)

            rows: list[tuple[str, float, list[float], float | None]] = []

            def unique(batch: list[str]) -> Callable[[int], Awaitable[object]]:
                return lambda i: auth.Authenticate(auth_pb2.AuthenticateRequest(token=batch[i]))

            # Each baseline and its cases alternate in slices (see run_interleaved): same background load for both.
            one = await run_interleaved(n, 1, {"floor": lambda i: health.Check(empty), "unique": unique(batches[0])})
            server_cpu: dict[str, float] = {}
            client_cpu: dict[str, float] = {}
            many = await run_interleaved(
                n,
                32,
                {
                    "floor": lambda i: health.Check(empty),
                    "unique": unique(batches[1]),
                    "cached": lambda i: auth.Authenticate(auth_pb2.AuthenticateRequest(token=cached)),
                },
                server_pid=proc.proc.pid,
                server_cpu=server_cpu,
                client_cpu=client_cpu,
            )
            floor1, floor32 = one["floor"][0], many["floor"][0]
            rows.append(("empty unary call (floor), 1 in flight", floor1, one["floor"][1], None))
            rows.append(("empty unary call (floor), 32 in flight", floor32, many["floor"][1], None))
            for label, (rate, lat), base in (
                ("Authenticate unique RS256, 1 in flight", one["unique"], floor1),
                ("Authenticate unique RS256, 32 in flight", many["unique"], floor32),
                ("Authenticate cached token, 32 in flight", many["cached"], floor32),
            ):
                rows.append((label, rate, lat, rate / base))

            half = n // 2
            raw_before = raw_verify_rate(key, batches[3][:half])  # raw is measured on both sides of stream and batch
            stream_rate = await stream_rate_of(auth, batches[2])
            batch_rate = await batch_rate_of(auth, batches[4])
        raw_middle = raw_verify_rate(key, batches[3][:half])
        workers_rate, workers_stream = await batch_with_workers(jwks.url, batches[0][:1000], batches[4], batches[2])
        raw = (raw_before + raw_middle + raw_verify_rate(key, batches[3][half:])) / 3
    finally:
        proc.stop()
        if not profile:
            jwks.close()

    print(f"\n{'case':<44} {'req/s':>9} {'p50 µs':>8} {'p99 µs':>8} {'ratio':>12}")
    for name, rate, lat, ratio in rows:
        r = f"{ratio:.2f}x floor" if ratio is not None else ""
        print(f"{name:<44} {rate:>9.0f} {pct(lat, 0.5):>8.0f} {pct(lat, 0.99):>8.0f} {r:>12}")
    stream_name = "AuthenticateStream unique RS256, 1 stream"
    print(f"{stream_name:<44} {stream_rate:>9.0f} {'':>8} {'':>8} {stream_rate / raw:>6.2f}x raw")
    batch_name = "AuthenticateBatch unique RS256, 500/message"
    print(f"{batch_name:<44} {batch_rate:>9.0f} {'':>8} {'':>8} {batch_rate / raw:>6.2f}x raw")
    for label, rate in (
        ("AuthenticateStream, CORESDK_AUTH_WORKERS=2", workers_stream),
        ("AuthenticateBatch, CORESDK_AUTH_WORKERS=2", workers_rate),
    ):
        print(f"{label:<44} {rate:>9.0f} {'':>8} {'':>8} {rate / raw:>6.2f}x raw")
    print(f"{'raw RS256 verify in-process (cryptography)':<44} {raw:>9.0f}")
    print_cpu_budget(server_cpu, client_cpu, 1 / raw)
    if profile:
        try:
            await profile_server(jwks.url, [t for b in batches for t in b])
        finally:
            jwks.close()
    print(
        "\ntargets: unique >= 0.85x floor, cached >= 0.95x floor, stream and batch >= 0.5x raw "
        f"(n={n}, median of one run)"
    )


def print_cpu_budget(server: dict[str, float], client: dict[str, float], raw_verify: float) -> None:
    """CPU per call at 32 in flight, server and load generator apart, and what the unique-token target leaves.

    On two cores shared by server and client the throughput ratio is about (floor's CPU) / (case's CPU), both sides
    counted: 0.85x allows a unique token 0.176 x the floor's CPU in all, the RSA verification included."""
    print(f"\n{'CPU per call, 32 in flight (µs)':<44} {'server':>9} {'client':>8} {'total':>8}")
    for name in ("floor", "cached", "unique"):
        total = server[name] + client[name]
        print(f"{name:<44} {server[name] * 1e6:>9.0f} {client[name] * 1e6:>8.0f} {total * 1e6:>8.0f}")
    floor = server["floor"] + client["floor"]
    unique = server["unique"] + client["unique"]
    allowed = floor * (1 / 0.85 - 1)
    print(
        f"a unique token adds {(unique - floor) * 1e6:.0f} µs (server {(server['unique'] - server['floor']) * 1e6:.0f},"
        f" of which RSA verify {raw_verify * 1e6:.0f}); 0.85x floor allows {allowed * 1e6:.0f} µs in all"
    )


async def stream_rate_of(auth: auth_pb2_grpc.AuthServiceStub, tokens: list[str]) -> float:
    """Unique tokens per second through one AuthenticateStream."""

    async def requests():  # type: ignore[no-untyped-def]
        for i, t in enumerate(tokens):
            yield auth_pb2.AuthenticateRequest(token=t, request_id=str(i))

    started = time.perf_counter()
    count = 0
    async for result in auth.AuthenticateStream(requests()):
        assert result.WhichOneof("result") == "principal"
        count += 1
    return count / (time.perf_counter() - started)


async def batch_rate_of(auth: auth_pb2_grpc.AuthServiceStub, tokens: list[str]) -> float:
    """Unique tokens per second through AuthenticateBatch: 500 per message, 2 messages in flight (one per core)."""
    pending = [
        auth_pb2.AuthenticateBatchRequest(requests=[auth_pb2.AuthenticateRequest(token=t) for t in tokens[j : j + 500]])
        for j in range(0, len(tokens), 500)
    ]

    async def worker() -> int:
        done = 0
        while pending:
            reply = await auth.AuthenticateBatch(pending.pop())
            done += sum(1 for r in reply.results if r.WhichOneof("result") == "principal")
        return done

    started = time.perf_counter()
    verified = sum(await asyncio.gather(worker(), worker()))
    assert verified == len(tokens), verified
    return verified / (time.perf_counter() - started)


async def batch_with_workers(
    jwks_url: str, warm_up: list[str], tokens: list[str], stream_tokens: list[str]
) -> tuple[float, float]:
    """Unique tokens per second through AuthenticateBatch and AuthenticateStream on a sidecar with 2 workers, after
    one unmeasured round of other tokens (the first sidecar is measured after thousands of calls too)."""
    proc = SidecarProcess({**trusting(jwks_url), "CORESDK_LOG_LEVEL": "WARNING", "CORESDK_AUTH_WORKERS": "2"})
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            await batch_rate_of(auth, warm_up)
            return await batch_rate_of(auth, tokens), await stream_rate_of(auth, stream_tokens)
    finally:
        proc.stop()


async def profile_server(jwks_url: str, tokens: list[str], seconds: float = 4.0) -> None:
    """Sample a cache-less sidecar (every call verifies a signature) under unary and batch load."""
    proc = SidecarProcess({**trusting(jwks_url), "CORESDK_LOG_LEVEL": "WARNING", "CORESDK_AUTH_CACHE_SIZE": "0"})
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            await auth.Authenticate(auth_pb2.AuthenticateRequest(token=tokens[0]))

            async def unary(i: int) -> object:
                return await auth.Authenticate(auth_pb2.AuthenticateRequest(token=tokens[i % len(tokens)]))

            rec = record(proc.proc.pid, seconds)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await run_load(2000, 32, unary)
            print(report("sidecar, Authenticate unique RS256, 32 in flight", collect(rec)))

            message = auth_pb2.AuthenticateBatchRequest(
                requests=[auth_pb2.AuthenticateRequest(token=t) for t in tokens[:500]]
            )
            rec = record(proc.proc.pid, seconds)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                await asyncio.gather(auth.AuthenticateBatch(message), auth.AuthenticateBatch(message))
            print(report("sidecar, AuthenticateBatch 500/message, 2 in flight", collect(rec)))
    finally:
        proc.stop()
    workers = {"CORESDK_LOG_LEVEL": "WARNING", "CORESDK_AUTH_CACHE_SIZE": "0", "CORESDK_AUTH_WORKERS": "2"}
    proc = SidecarProcess({**trusting(jwks_url), **workers})
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            auth = auth_pb2_grpc.AuthServiceStub(channel)

            async def requests():  # type: ignore[no-untyped-def]
                deadline = time.monotonic() + seconds
                i = 0
                while time.monotonic() < deadline:
                    yield auth_pb2.AuthenticateRequest(token=tokens[i % len(tokens)])
                    i += 1

            rec = record(proc.proc.pid, seconds)
            async for _ in auth.AuthenticateStream(requests()):
                pass
            print(
                report("sidecar with CORESDK_AUTH_WORKERS=2, AuthenticateStream (serving process only)", collect(rec))
            )
    finally:
        proc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="also show where the sidecar's time goes (py-spy)")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.profile))
