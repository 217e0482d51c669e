"""The sidecar's durable audit journal over real gRPC: chaining, masking, bad input, and kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.journal import Journal
from coresdk.audit.record import GENESIS_HASH
from coresdk.client import error_reason
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess, trusting


def rec(i: int = 0, **kw: str) -> audit_pb2.AuditRecord:
    base = {
        "actor": f"user-{i}",
        "action": "orders.read",
        "resource": f"orders/{i}",
        "outcome": "allow",
        "tenant_id": "t1",
    }
    base.update(kw)
    return audit_pb2.AuditRecord(**base)


@pytest.fixture(scope="module")
def audit_sidecar(jwks: JwksServer) -> Iterator[SidecarProcess]:
    proc = SidecarProcess(trusting(jwks.url, CORESDK_AUDIT_SEGMENT_BYTES="8192"))
    yield proc
    proc.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def audit(audit_sidecar: SidecarProcess) -> AsyncIterator[audit_pb2_grpc.AuditServiceStub]:
    async with grpc.aio.insecure_channel(audit_sidecar.target) as ch:
        yield audit_pb2_grpc.AuditServiceStub(ch)


def journal_of(proc: SidecarProcess) -> list[StoredRecord]:
    entries = Journal(Path(proc.env["CORESDK_DATA_DIR"]) / "audit", 1 << 30).read_all()
    return [StoredRecord(e.chain_id, e.seq, e.canonical, e.record_hash) for e in entries]


async def test_appends_are_chained_and_verifiable(
    audit: audit_pb2_grpc.AuditServiceStub, audit_sidecar: SidecarProcess
) -> None:
    first = await audit.Append(audit_pb2.AppendRequest(record=rec(1, chain_id="chain-a")))
    assert (first.seq, first.previous_hash, first.chain_id) == (1, GENESIS_HASH, "chain-a")
    second = await audit.Append(audit_pb2.AppendRequest(record=rec(2, chain_id="chain-a")))
    assert (second.seq, second.previous_hash) == (2, first.record_hash)
    batch = await audit.AppendBatch(
        audit_pb2.AppendBatchRequest(records=[rec(i, chain_id="chain-a") for i in range(3, 8)])
    )
    assert [r.seq for r in batch.results] == [3, 4, 5, 6, 7]
    assert batch.results[0].previous_hash == second.record_hash
    stored = [r for r in journal_of(audit_sidecar) if r.chain_id == "chain-a"]
    assert [r.seq for r in stored] == list(range(1, 8))
    # the hash is SHA-256 over the stored canonical bytes
    assert hashlib.sha256(stored[0].canonical).hexdigest() == first.record_hash
    assert verify_chain("chain-a", stored).failure is None
    verdict = await audit.Verify(audit_pb2.VerifyRequest(chain_id="chain-a"))
    assert verdict.chain_valid and verdict.records_checked == 7


async def test_metadata_is_masked_before_hashing(
    audit: audit_pb2_grpc.AuditServiceStub, audit_sidecar: SidecarProcess
) -> None:
    meta = {"password": "hunter2-secret", "nested": [{"api_key": "sk_live_abc"}], "order": 42, "note": "café"}
    reply = await audit.Append(
        audit_pb2.AppendRequest(record=rec(1, chain_id="masked", metadata_json=json.dumps(meta)))
    )
    (stored,) = [r for r in journal_of(audit_sidecar) if r.chain_id == "masked"]
    body = json.loads(stored.canonical)
    assert body["metadata"] == {
        "password": "[REDACTED]",
        "nested": [{"api_key": "[REDACTED]"}],
        "order": 42,
        "note": "café",
    }
    assert b"hunter2" not in stored.canonical and b"sk_live" not in stored.canonical
    assert body["id"] == reply.id
    assert body["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "bad",
    [
        rec(metadata_json="{not json"),
        rec(metadata_json="[1, 2]"),
        rec(metadata_json='{"n": 9007199254740993}'),
        rec(metadata_json='{"n": NaN}'),
        rec(metadata_json='{"a": 1, "a": 2}'),
        rec(metadata_json='{"s": "\\udc80"}'),
        rec(metadata_json=json.dumps({"x": "y" * 70000})),
        rec(actor="a" * 5000),
        rec(actor=""),
        rec(chain_id="bad chain/../x"),
    ],
)
async def test_bad_input_is_refused_and_leaves_the_chain(
    audit: audit_pb2_grpc.AuditServiceStub, bad: audit_pb2.AuditRecord
) -> None:
    before = await audit.Append(audit_pb2.AppendRequest(record=rec(0, chain_id="bad-input")))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await audit.Append(
            audit_pb2.AppendRequest(
                record=audit_pb2.AuditRecord(**{**_fields(bad), "chain_id": bad.chain_id or "bad-input"})
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(info.value) == "INVALID_RECORD"
    with pytest.raises(grpc.aio.AioRpcError):
        await audit.AppendBatch(audit_pb2.AppendBatchRequest(records=[rec(1, chain_id="bad-input"), bad]))
    after = await audit.Append(audit_pb2.AppendRequest(record=rec(0, chain_id="bad-input")))
    assert after.seq == before.seq + 1
    assert after.previous_hash == before.record_hash


def _fields(r: audit_pb2.AuditRecord) -> dict[str, str]:
    return {f.name: v for f, v in r.ListFields()}


async def test_segments_rotate_and_seal(audit: audit_pb2_grpc.AuditServiceStub, audit_sidecar: SidecarProcess) -> None:
    for _ in range(5):
        await audit.AppendBatch(audit_pb2.AppendBatchRequest(records=[rec(i, chain_id="rotation") for i in range(20)]))
    segments = sorted((Path(audit_sidecar.env["CORESDK_DATA_DIR"]) / "audit").glob("segment-*.jnl"))
    assert len(segments) > 1
    assert all(p.stat().st_mode & 0o222 == 0 for p in segments[:-1]), "sealed segments are read-only"
    assert (await audit.Verify(audit_pb2.VerifyRequest(chain_id="rotation"))).records_checked == 100


KILLS = 4


async def test_kill_9_loses_nothing_acknowledged(jwks: JwksServer) -> None:
    proc = SidecarProcess(trusting(jwks.url))
    acknowledged: dict[int, str] = {}
    rng = random.Random(7)
    try:
        for round_ in range(KILLS):
            async with grpc.aio.insecure_channel(proc.target) as ch:
                stub = audit_pb2_grpc.AuditServiceStub(ch)
                stop = asyncio.Event()

                async def writer(w: int, stub: audit_pb2_grpc.AuditServiceStub, stop: asyncio.Event) -> None:
                    while not stop.is_set():
                        try:
                            r = await stub.Append(audit_pb2.AppendRequest(record=rec(w, chain_id="crash")), timeout=5)
                        except grpc.aio.AioRpcError:
                            return
                        acknowledged[r.seq] = r.record_hash

                tasks = [asyncio.create_task(writer(w, stub, stop)) for w in range(32)]
                await asyncio.sleep(0.3 + rng.random() * 0.5)
                proc.kill()
                stop.set()
                for t in tasks:
                    with contextlib.suppress(Exception):
                        await t
            stored = {r.seq: r for r in journal_of(proc) if r.chain_id == "crash"}
            missing = [s for s in acknowledged if s not in stored or stored[s].record_hash != acknowledged[s]]
            assert not missing, f"round {round_}: acknowledged records lost: {missing[:5]}"
            proc.start()
        chain = [r for r in journal_of(proc) if r.chain_id == "crash"]
        assert verify_chain("crash", chain).failure is None
        assert len(acknowledged) > 50, "the load did not get going; the test would prove nothing"
        async with grpc.aio.insecure_channel(proc.target) as ch:
            stub = audit_pb2_grpc.AuditServiceStub(ch)
            after = await stub.Append(audit_pb2.AppendRequest(record=rec(0, chain_id="crash")))
            assert after.seq == len(chain) + 1
            assert (await stub.Verify(audit_pb2.VerifyRequest(chain_id="crash"))).chain_valid
    finally:
        proc.stop()


async def test_invalid_utf8_on_the_wire_is_invalid_argument(
    audit_sidecar: SidecarProcess, audit: audit_pb2_grpc.AuditServiceStub
) -> None:
    before = await audit.Append(audit_pb2.AppendRequest(record=rec(0, chain_id="utf8")))
    inner = bytes([0x22, 2, 0xFF, 0xFE])  # AuditRecord.actor (field 4) holding invalid UTF-8
    raw = bytes([0x0A, len(inner)]) + inner  # AppendRequest.record (field 1)
    async with grpc.aio.insecure_channel(audit_sidecar.target) as ch:
        call = ch.unary_unary("/coresdk.v1.AuditService/Append")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(raw)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(info.value) == "MALFORMED_REQUEST"
    after = await audit.Append(audit_pb2.AppendRequest(record=rec(0, chain_id="utf8")))
    assert after.seq == before.seq + 1
