"""What grpc.aio leaves a handler: a bare server (generic handlers, raw bytes, nothing else registered) whose handlers
do a fixed amount of work, against the same server's empty handler, driven like bench.authenticate and bench.audit
(32 in flight, interleaved slices, the same two cores).

The questions it answers, one per target of issue 17 that the product's own benches do not reach:
- unary: how far below the empty call does ANY handler land that spends t µs? The times burnt are measured in this
  run, in process: raw RS256 verification (cryptography alone) and the sidecar's whole validation of a unique token
  (TokenValidator.verify). A last row runs that real validation in the bare handler, so the gap between the burnt
  and the real row is what our code costs when it shares the cores with grpcio (cold caches), not in a hot loop.
- append: a durable acknowledgement through the same group commit as the journal (one write and fsync per group,
  in a thread) with no record work at all, then with the sidecar's measured per-record work burnt first.
- stream: one bidirectional stream whose handler answers each message at once, against raw RS256 verification per
  second: the stream target is 0.5x of that.

Run: .venv/bin/python -m bench.grpc_floor [--requests N]
(`--serve PORT BURN_US` is the bare server itself, started by the benchmark.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bench.audit import record as audit_record
from bench.load import run_interleaved
from coresdk.audit.record import GENESIS_HASH, seal
from coresdk.config.sidecar import load_sidecar_config
from coresdk.engine import Engine
from coresdk.jose.b64 import b64url_decode
from coresdk.runtime import settle_after_start_up
from sidecar.services.audit import AuditService
from tests.support.jwks_server import JwksServer
from tests.support.ports import free_port
from tests.support.processes import ROOT, trusting
from tests.support.tokens import SigningKey, claims

ANSWER = b"p" * 330  # about a Principal's size
TOKEN_SIZE = 800  # about a token's size


class _GroupCommit:
    """The journal's durability pattern, bare: callers wait for the one write + fsync (in a thread) covering them."""

    def __init__(self, path: str, in_loop: bool = False) -> None:
        self._in_loop = in_loop  # write and fsync in the event loop's own thread (the gateway's small groups)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, data: bytes) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((data, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
        await future

    async def _write_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            if self._in_loop:
                self._write(b"".join(data for data, _ in batch))
            else:
                await asyncio.to_thread(self._write, b"".join(data for data, _ in batch))
            for _, future in batch:
                future.set_result(None)

    def _write(self, data: bytes) -> None:
        os.write(self._fd, data)
        os.fsync(self._fd)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def serve(port: int, burn_us: float) -> None:
    """The bare server: Empty, Burn, Verify (the real TokenValidator.verify, engine from CORESDK_* settings),
    Commit (burn, then the group commit), CommitInLoop (the group commit writing in the loop's thread),
    Yield (suspends once, nothing else) and Echo (a stream answering each message)."""
    burn = burn_us * 1e-6
    engine = Engine(load_sidecar_config(os.environ).engine)
    await engine.start()
    while not all(engine.readiness().values()):  # the issuer's keys fetched, the journal open
        await asyncio.sleep(0.05)
    commit = _GroupCommit(os.path.join(os.environ["CORESDK_DATA_DIR"], "commit.log"))
    commit_in_loop = _GroupCommit(os.path.join(os.environ["CORESDK_DATA_DIR"], "commit-in-loop.log"), in_loop=True)

    async def empty(request: bytes, context: Any) -> bytes:
        return b""

    async def burnt(request: bytes, context: Any) -> bytes:
        _spin(burn)
        return ANSWER

    async def verify(request: bytes, context: Any) -> bytes:
        verified = await engine.validator.verify(request.decode())
        return verified.wire

    async def committed(request: bytes, context: Any) -> bytes:
        _spin(burn)
        await commit.append(request)
        return ANSWER[:150]  # about an AppendResponse

    async def suspended(request: bytes, context: Any) -> bytes:
        await asyncio.sleep(0)  # what any handler that waits (for an fsync, a lock, a peer) pays at least
        return ANSWER[:150]

    async def committed_in_loop(request: bytes, context: Any) -> bytes:
        await commit_in_loop.append(request)
        return ANSWER[:150]

    async def echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for _ in requests:
            yield ANSWER

    methods = {
        "Empty": grpc.unary_unary_rpc_method_handler(empty),
        "Burn": grpc.unary_unary_rpc_method_handler(burnt),
        "Verify": grpc.unary_unary_rpc_method_handler(verify),
        "Commit": grpc.unary_unary_rpc_method_handler(committed),
        "CommitInLoop": grpc.unary_unary_rpc_method_handler(committed_in_loop),
        "Yield": grpc.unary_unary_rpc_method_handler(suspended),
        "Echo": grpc.stream_stream_rpc_method_handler(echo),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", methods),))
    server.add_insecure_port(f"[::1]:{port}")
    await server.start()
    settle_after_start_up()  # as every service does once it listens
    print("ready", flush=True)
    await server.wait_for_termination()


class _Server:
    """A bare server process burning burn_us per Burn/Commit call, trusting the benchmark's JWKS."""

    def __init__(self, burn_us: float, engine_env: dict[str, str]) -> None:
        self.port = free_port("::1")
        env = {**os.environ, **engine_env, "PYTHONPATH": str(ROOT), "CORESDK_LOG_LEVEL": "WARNING"}
        env["CORESDK_DATA_DIR"] = tempfile.mkdtemp(prefix="coresdk-floor-")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.grpc_floor", "--serve", str(self.port), f"{burn_us:.1f}"],
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == b"ready"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def in_process_costs(env: dict[str, str], key: SigningKey, n: int) -> dict[str, float]:
    """Seconds per raw RS256 verify, per TokenValidator.verify of a unique token, and per Append record (the
    sidecar's AuditService body: chain id, fields, masking, validation; then the seal), measured here."""
    engine = Engine(load_sidecar_config({**env, "CORESDK_DATA_DIR": tempfile.mkdtemp(prefix="coresdk-floor-")}).engine)
    await engine.start()
    try:
        tokens = [key.sign(claims(jti=f"floor-{i}")) for i in range(n + 200)]
        for token in tokens[:200]:
            await engine.validator.verify(token)
        started = time.perf_counter()
        for token in tokens[200:]:
            await engine.validator.verify(token)
        ours = (time.perf_counter() - started) / n
        public = key.private.public_key()
        signed = [(t.rsplit(".", 1)[0].encode(), b64url_decode(t.rsplit(".", 1)[1])) for t in tokens[200:]]
        started = time.perf_counter()
        for signing_input, signature in signed:
            public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        raw = (time.perf_counter() - started) / n
        service = AuditService(engine.audit, "bench", engine.metrics, engine.masker)
        records = [audit_record(i) for i in range(n)]
        started = time.perf_counter()
        previous = GENESIS_HASH
        for seq, record in enumerate(records, 1):
            chain_id, body = service._body(record)
            previous = seal(body, chain_id, seq, previous).record_hash
        append = (time.perf_counter() - started) / n
    finally:
        await engine.stop()
    return {"raw": raw, "ours": ours, "append": append}


async def unary_ratio(server: _Server, method: str, requests: list[bytes], n: int) -> tuple[float, float]:
    """(method's calls per second / Empty's, the server's extra CPU µs per call) at 32 in flight."""
    async with grpc.aio.insecure_channel(f"[::1]:{server.port}") as channel:
        empty, call = channel.unary_unary("/bench.Floor/Empty"), channel.unary_unary(f"/bench.Floor/{method}")
        for _ in range(300):
            await empty(b"")
        cpu: dict[str, float] = {}
        cases = {"empty": lambda i: empty(b""), "call": lambda i: call(requests[i % len(requests)])}
        measured = await run_interleaved(n, 32, cases, server_pid=server.proc.pid, server_cpu=cpu)
    return measured["call"][0] / measured["empty"][0], (cpu["call"] - cpu["empty"]) * 1e6


async def stream_rate(server: _Server, n: int) -> float:
    """Messages per second through one Echo stream, each answered as it arrives."""
    async with grpc.aio.insecure_channel(f"[::1]:{server.port}") as channel:
        echo = channel.stream_stream("/bench.Floor/Echo")
        token = b"t" * TOKEN_SIZE

        async def requests() -> AsyncIterator[bytes]:
            for _ in range(n):
                yield token

        started = time.perf_counter()
        count = 0
        async for _ in echo(requests()):
            count += 1
    return count / (time.perf_counter() - started)


async def main(n: int) -> None:
    key = SigningKey.rsa("bench")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    env = trusting(jwks.url)
    try:
        cost = await in_process_costs(env, key, 2000)
        print(
            f"in process: raw RS256 verify {cost['raw'] * 1e6:.1f} µs, TokenValidator.verify of a unique token"
            f" {cost['ours'] * 1e6:.1f} µs, an Append record (body + seal) {cost['append'] * 1e6:.1f} µs"
        )
        tokens = [key.sign(claims(jti=f"floor-real-{i}")).encode() for i in range(n)]
        filler = [b"t" * TOKEN_SIZE]
        records = [audit_record(i).SerializeToString() for i in range(256)]
        rows: list[tuple[str, str, float, float]] = []
        for burn, kind, method, label, payloads in (
            (0.0, "unary", "Burn", "nothing (answer of a Principal's size)", filler),
            (cost["raw"] * 1e6, "unary", "Burn", "raw RS256 verify's time (cryptography alone)", filler),
            (cost["ours"] * 1e6, "unary", "Burn", "TokenValidator.verify's time, burnt in a loop", filler),
            (0.0, "unary", "Verify", "the real TokenValidator.verify, unique tokens", tokens),
            (0.0, "append", "Yield", "no work, but the handler suspends once (sleep(0))", records),
            (0.0, "append", "Commit", "group commit (write + fsync in a thread) only", records),
            (0.0, "append", "CommitInLoop", "group commit, write + fsync in the event loop", records),
            (cost["append"] * 1e6, "append", "Commit", "an Append record's time, then the group commit", records),
        ):
            server = _Server(burn, env)
            try:
                ratio, extra = await unary_ratio(server, method, payloads, n)
            finally:
                server.close()
            rows.append((kind, label, ratio, extra))
        server = _Server(0.0, env)
        try:
            echo = await stream_rate(server, n)
        finally:
            server.close()
    finally:
        jwks.close()
    print(f"\n{'bare grpc.aio handler, 32 in flight':<58} {'ratio':>12} {'server +µs/call':>16}")
    for kind, label, ratio, extra in rows:
        print(f"{kind:<7}{label:<51} {ratio:>8.2f}x floor {extra:>16.0f}")
    raw_rate = 1 / cost["raw"]
    print(f"stream one Echo stream, nothing done per message {echo:>10.0f}/s = {echo / raw_rate:.2f}x raw RS256 verify")
    print("\ntargets: Authenticate unique >= 0.85x floor, Append >= 0.85x floor, AuthenticateStream >= 0.5x raw verify")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "BURN_US"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(int(args.serve[0]), float(args.serve[1])))
    else:
        asyncio.run(main(args.requests))
