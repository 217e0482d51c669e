"""What grpcio leaves a unary handler: a bare grpc.aio server whose handler only burns a fixed CPU time, against the
same server's empty handler, measured like bench.authenticate (32 in flight, interleaved slices, same two cores).

The question it answers: how far below the empty call does ANY handler land that spends t µs of Python-side CPU?
The times burnt are measured in this run, in process: raw RS256 verification (cryptography alone), and the sidecar's
whole validation of a unique token (coresdk's TokenValidator.verify on an Engine trusting a local JWKS). If even the
bare server with a handler that spends exactly what cryptography takes stays under the target, no Python-side work
can meet it; the gap between the two rows is what our code costs.

Run: .venv/bin/python -m bench.grpc_floor [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from bench.load import run_interleaved
from coresdk.config.sidecar import load_sidecar_config
from coresdk.engine import Engine
from coresdk.jose.b64 import b64url_decode
from tests.support.jwks_server import JwksServer
from tests.support.ports import free_port
from tests.support.processes import trusting
from tests.support.tokens import SigningKey, claims

_SERVER = """
import asyncio, sys, time, grpc
BURN = float(sys.argv[2]) * 1e-6
ANSWER = b"p" * 330  # about a Principal's size

async def empty(request, context):
    return b""

async def burn(request, context):
    end = time.perf_counter() + BURN
    while time.perf_counter() < end:
        pass
    return ANSWER

async def main():
    server = grpc.aio.server()
    methods = {"Empty": grpc.unary_unary_rpc_method_handler(empty), "Burn": grpc.unary_unary_rpc_method_handler(burn)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", methods),))
    server.add_insecure_port("[::1]:" + sys.argv[1])
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""


async def in_process_costs(n: int) -> tuple[float, float]:
    """(seconds per raw RS256 verify, seconds per TokenValidator.verify of a unique token), measured here."""
    key = SigningKey.rsa("bench")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    env = {**trusting(jwks.url), "CORESDK_DATA_DIR": tempfile.mkdtemp(prefix="coresdk-floor-")}
    engine = Engine(load_sidecar_config(env).engine)
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
    finally:
        await engine.stop()
        jwks.close()
    return raw, ours


async def burnt_ratio(burn_us: float, n: int) -> tuple[float, float]:
    """(Burn's calls per second / Empty's, the server's extra CPU µs per Burn call) at 32 in flight."""
    port = free_port("::1")
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(port), f"{burn_us:.1f}"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        async with grpc.aio.insecure_channel(f"[::1]:{port}") as channel:
            empty, burn = channel.unary_unary("/bench.Floor/Empty"), channel.unary_unary("/bench.Floor/Burn")
            token = b"t" * 800  # about a token's size
            for _ in range(300):
                await empty(b"")
            cpu: dict[str, float] = {}
            cases = {"empty": lambda i: empty(b""), "burn": lambda i: burn(token)}
            measured = await run_interleaved(n, 32, cases, server_pid=proc.pid, server_cpu=cpu)
    finally:
        proc.kill()
        proc.wait()
    return measured["burn"][0] / measured["empty"][0], (cpu["burn"] - cpu["empty"]) * 1e6


async def main(n: int) -> None:
    raw, ours = await in_process_costs(2000)
    print(f"in process: raw RS256 verify {raw * 1e6:.1f} µs, TokenValidator.verify, unique token {ours * 1e6:.1f} µs")
    print(f"\n{'bare grpc.aio handler that burns':<52} {'ratio':>12} {'server +µs/call':>16}")
    for label, burn in (
        ("nothing (answer of a Principal's size)", 0.0),
        ("raw RS256 verify's time (cryptography alone)", raw * 1e6),
        ("TokenValidator.verify's time (all of a unique token)", ours * 1e6),
    ):
        ratio, extra = await burnt_ratio(burn, n)
        print(f"{label:<52} {ratio:>8.2f}x floor {extra:>16.0f}")
    print("\ntarget for Authenticate with unique tokens: 0.85x floor")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    asyncio.run(main(parser.parse_args().requests))
