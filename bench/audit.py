"""Audit benchmark, ratios against baselines measured in the same run.

- AppendBatch: durable records/s (fsynced journal) through a real sidecar.
- Append at 32 in flight vs an empty unary call (grpc.health.v1 Check) on the same server.
- Chain verification (re-hash + link checks) vs a raw SHA-256 chain over the same canonical bytes.
Run: .venv/bin/python -m bench.audit
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.load import run_interleaved
from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.journal import Journal
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import SigningKey


def record(i: int) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        actor=f"user-{i % 100}",
        action="orders.read",
        resource=f"orders/{i}",
        outcome="allow",
        tenant_id="t1",
        metadata_json=json.dumps({"order": i, "region": "eu-west-1"}),
    )


async def run(n_batch: int, n_unary: int) -> None:
    key = SigningKey.rsa("bench")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    proc = SidecarProcess(
        {
            **trusting(jwks.url),
            "CORESDK_LOG_LEVEL": "WARNING",
        }
    )
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            batch = [record(i) for i in range(500)]
            await stub.AppendBatch(audit_pb2.AppendBatchRequest(records=batch))
            started = time.perf_counter()
            sent = 0

            async def batch_worker() -> None:
                nonlocal sent
                while sent < n_batch:
                    sent += len(batch)
                    await stub.AppendBatch(audit_pb2.AppendBatchRequest(records=batch))

            await asyncio.gather(*(batch_worker() for _ in range(4)))
            batch_rate = sent / (time.perf_counter() - started)

            empty = health_pb2.HealthCheckRequest()
            one = record(1)
            # floor and Append alternate in slices (see run_interleaved): same background load for both
            measured = await run_interleaved(
                n_unary,
                32,
                {
                    "floor": lambda _: health.Check(empty),
                    "append": lambda _: stub.Append(audit_pb2.AppendRequest(record=one)),
                },
            )
            floor, append_rate = measured["floor"][0], measured["append"][0]
        entries = Journal(Path(proc.env["CORESDK_DATA_DIR"]) / "audit", 1 << 40).read_all()
    finally:
        proc.stop()
        jwks.close()
    records = [StoredRecord(e.chain_id, e.seq, e.canonical, e.record_hash) for e in entries]
    t0 = time.perf_counter()
    result = verify_chain(records[0].chain_id, records)
    verify_rate = len(records) / (time.perf_counter() - t0)
    assert result.failure is None
    t0 = time.perf_counter()
    previous = b"\x00" * 32
    for r in records:
        previous = hashlib.sha256(previous + r.canonical).digest()
    raw_rate = len(records) / (time.perf_counter() - t0)
    print(f"\n{'case':<52} {'records/s':>10} {'ratio':>16}")
    print(f"{'AppendBatch (500/batch, 4 in flight), fsynced':<52} {batch_rate:>10.0f} {'target 20000/s':>16}")
    print(f"{'empty unary call (floor), 32 in flight':<52} {floor:>10.0f}")
    print(
        f"{'Append, 32 in flight, fsynced (group commit)':<52} {append_rate:>10.0f} {append_rate / floor:>10.2f}x floor"
    )
    print(f"{'chain verification (re-hash + links)':<52} {verify_rate:>10.0f} {verify_rate / raw_rate:>11.2f}x raw")
    print(f"{'raw SHA-256 chain over the same bytes':<52} {raw_rate:>10.0f}")
    print(f"\n(records verified: {len(records)}; targets: Append >= 0.85x floor, verification >= 0.5x raw)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-records", type=int, default=40000)
    parser.add_argument("--unary", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(run(args.batch_records, args.unary))
