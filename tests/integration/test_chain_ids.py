"""Chain ids are names, against real processes: the control plane's ingest refuses every id outside the grammar
without a trace, the note-injection attack goes nowhere, a chain the sinks cannot take blocks no other chain, and
the sidecar refuses hostile ids in its RPCs."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
import requests
from hypothesis import HealthCheck, given, settings

from coresdk.audit.canonical import canonical_bytes
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes
from coresdk.audit.record import GENESIS_HASH, validate_fields
from coresdk.client import error_reason
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.integration.test_audit_controlplane import ingest, make_chain
from tests.support.controlplane import ControlPlaneProcess
from tests.support.dbaccess import db_execute
from tests.unit.chain_id_cases import NAMED_HOSTILE, hostile_ids, valid_ids

HYPOTHESIS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def cpc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    directory = tmp_path_factory.mktemp("cp-chain-ids")
    proc = ControlPlaneProcess(
        directory,
        f"sqlite:///{directory / 'controlplane.db'}",
        CORESDK_AUDIT_CHECKPOINT_SECONDS="0.5",
        CORESDK_AUDIT_SINK_DIR=str(directory / "offbox"),
    )
    yield proc
    assert proc.stop() == 0, proc.output()


def hostile_record(chain_id: str, seq: int = 1, previous: str = GENESIS_HASH) -> dict[str, Any]:
    """A record that is right in every way but its chain id (built by hand: seal() refuses such ids)."""
    body = validate_fields({"actor": "attacker", "action": "x.y", "outcome": "allow"})
    canonical = canonical_bytes({**body, "chain_id": chain_id, "seq": seq, "previous_hash": previous})
    return {
        "chain_id": chain_id,
        "seq": seq,
        "record_hash": hashlib.sha256(canonical).hexdigest(),
        "canonical": canonical.decode(),
    }


def state(cp: ControlPlaneProcess) -> tuple[Any, ...]:
    report = cp.admin("GET", "/api/v1/audit?verify_chain=true").json()
    alerts = cp.admin("GET", "/api/v1/audit/alerts").json()["alerts"]
    return tuple((c["chain_id"], c["head_seq"]) for c in report["chains"]), len(alerts)


def eventually(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


@HYPOTHESIS
@given(chain_id=hostile_ids)
def test_hostile_chain_ids_are_refused_at_ingest_and_change_nothing(cpc: ControlPlaneProcess, chain_id: str) -> None:
    token = cpc.chain_credential("probe")
    before = state(cpc)
    good = make_chain("probe", 1)[0]
    for records in ([hostile_record(chain_id)], [good, hostile_record(chain_id)]):
        resp = ingest(cpc, records, token=token)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "invalid_chain_id"
        assert "must be 1-128 characters" in resp.json()["error_description"]
    assert state(cpc) == before  # not even the good record in front of it, not even an alert


_SENT: dict[str, list[dict[str, Any]]] = {}


def send(cp: ControlPlaneProcess, chain_id: str) -> None:
    """Two records on the chain, with the credential of the sidecar enrolled for it; an id drawn again (hypothesis
    does that) sends the same records again, which must come back as duplicates."""
    first = chain_id not in _SENT
    resp = ingest(cp, _SENT.setdefault(chain_id, make_chain(chain_id, 2)))
    assert resp.status_code == 200, resp.text
    assert resp.json() == ({"stored": 2, "duplicates": 0} if first else {"stored": 0, "duplicates": 2})


@HYPOTHESIS
@given(chain_id=valid_ids)
def test_valid_chain_ids_are_accepted(cpc: ControlPlaneProcess, chain_id: str) -> None:
    if chain_id != "controlplane":  # the control plane's own chain, refused for another reason (403)
        send(cpc, chain_id)


def test_edge_chain_ids_are_checkpointed_delivered_and_verify_offline(cpc: ControlPlaneProcess) -> None:
    from coresdk.audit.offline import verify_export

    key = requests.get(f"{cpc.url}/api/v1/audit/checkpoint-key", timeout=5).json()["verifier_key"]
    sink = cpc.data_dir / "offbox"
    for chain in ("a", "x" * 128, "A.b_c:d-e", "...", "-", "tenant:1.orders"):
        send(cpc, chain)
        eventually(lambda c=chain: (sink / f"{c}.checkpoint").exists(), f"checkpoint of {chain} in the sink")
        report = verify_export(sink / f"{chain}.jsonl", sink / f"{chain}.checkpoint", key)
        assert report["valid"] is True, report


def test_the_note_injection_attack_is_refused(cpc: ControlPlaneProcess) -> None:
    """Finding 4: a chain id "victim\\n1\\n<root>" made the control plane sign a note for another chain."""
    fake = make_chain("victim", 1)
    root = root_from_leaf_hashes(record_tree_leaves([bytes.fromhex(r["record_hash"]) for r in fake]))
    injected = f"victim\n1\n{base64.b64encode(root).decode()}"
    records = [hostile_record(injected)]
    resp = ingest(cpc, records, token=cpc.chain_credential("victim"))
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_chain_id")
    for chain in (injected, "victim"):
        assert (
            requests.get(f"{cpc.url}/api/v1/audit/checkpoint", params={"chain_id": chain}, timeout=5).status_code == 404
        )
    assert not list((cpc.data_dir / "offbox").glob("victim*"))


def test_a_chain_the_sink_cannot_take_blocks_no_other_chain(cpc: ControlPlaneProcess) -> None:
    """Finding 4: one chain's file that cannot be written (here a directory in its place; before, a 300-character
    id) stopped the directory sink for every chain after it."""
    sink = cpc.data_dir / "offbox"
    (sink / "aaa-blocked.jsonl").mkdir(parents=True)
    # and a chain stored before ids had a grammar, as an old database may hold
    legacy = "legacy/" + "x" * 300
    db_execute(
        cpc.database_url,
        "INSERT INTO audit_records (chain_id, seq, record_id, ts, actor, action, resource, outcome, tenant_id, "
        f"canonical, record_hash, previous_hash, received_at) VALUES ('{legacy}', 1, 'r', 't', 'a', 'x', '', 'o', '', "
        f"'{{}}', '{'0' * 64}', '{GENESIS_HASH}', 0)",
    )
    assert ingest(cpc, make_chain("aaa-blocked", 4)).status_code == 200
    assert ingest(cpc, make_chain("zzz-good", 4)).status_code == 200
    eventually(lambda: (sink / "zzz-good.checkpoint").exists(), "the good chain reaches the sink")
    assert len((sink / "zzz-good.jsonl").read_text().splitlines()) == 4
    report = cpc.admin("GET", "/api/v1/audit?verify_chain=true").json()
    by_chain = {c["chain_id"]: c for c in report["chains"]}
    assert by_chain[legacy]["reason"] == "invalid_chain_id"
    assert by_chain["zzz-good"]["valid"] is True
    assert by_chain["aaa-blocked"]["valid"] is True  # stored and checkpointed; only its off-box copy waits
    assert requests.get(f"{cpc.url}/api/v1/audit/checkpoint", params={"chain_id": "aaa-blocked"}, timeout=5).ok
    db_execute(cpc.database_url, f"DELETE FROM audit_records WHERE chain_id = '{legacy}'")


# --- the sidecar ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chain_id", [c for c in NAMED_HOSTILE if c])  # "" means the sidecar's default chain
async def test_the_sidecar_refuses_hostile_chain_ids_in_every_rpc(channel: grpc.aio.Channel, chain_id: str) -> None:
    stub = audit_pb2_grpc.AuditServiceStub(channel)
    record = audit_pb2.AuditRecord(actor="a", action="x.y", outcome="allow", chain_id=chain_id)
    calls = [
        stub.Append(audit_pb2.AppendRequest(record=record)),
        stub.AppendBatch(audit_pb2.AppendBatchRequest(records=[record])),
        stub.Verify(audit_pb2.VerifyRequest(chain_id=chain_id)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(info.value) == "INVALID_RECORD"
        assert "chain_id must be 1-128 characters" in (info.value.details() or "")
