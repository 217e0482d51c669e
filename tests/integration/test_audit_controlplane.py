"""The control plane's audit store on both backends: ingest rules, tamper lab, checkpoints, proofs, offline verify,
and shipping from a real sidecar through a control-plane outage."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from coresdk.audit import merkle
from coresdk.audit.record import GENESIS_HASH, seal, validate_fields
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.conftest import database_url
from tests.support.controlplane import ControlPlaneProcess
from tests.support.dbaccess import db_execute
from tests.support.processes import SidecarProcess, trusting


@pytest.fixture(scope="module")
def cpa(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlaneProcess]:
    directory = tmp_path_factory.mktemp(f"cp-audit-{backend}")
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    proc = ControlPlaneProcess(
        directory,
        database_url(backend, pg, directory),
        CORESDK_AUDIT_CHECKPOINT_SECONDS="0.5",
        CORESDK_AUDIT_SINK_DIR=str(directory / "offbox"),
    )
    yield proc
    proc.stop()


def make_chain(chain_id: str, n: int, start: int = 1, previous: str = GENESIS_HASH) -> list[dict[str, Any]]:
    out = []
    for seq in range(start, start + n):
        body = validate_fields(
            {
                "actor": f"user-{seq % 3}",
                "action": "orders.read",
                "resource": f"orders/{seq}",
                "outcome": "allow",
                "tenant_id": "t1",
                "metadata": {"n": seq},
            }
        )
        s = seal(body, chain_id, seq, previous)
        out.append({"chain_id": chain_id, "seq": seq, "record_hash": s.record_hash, "canonical": s.canonical.decode()})
        previous = s.record_hash
    return out


def ingest(cp: ControlPlaneProcess, records: list[dict[str, Any]], token: str = "") -> requests.Response:
    """POST the records with the credential of the sidecar enrolled for their chain (unless a token is given)."""
    return requests.post(
        f"{cp.url}/api/v1/audit/ingest",
        json={"records": records},
        headers={"Authorization": f"Bearer {token or cp.chain_credential(records[0]['chain_id'])}"},
        timeout=10,
    )


def verify(cp: ControlPlaneProcess, chain_id: str, full: bool = True) -> dict[str, Any]:
    resp = cp.admin("GET", f"/api/v1/audit?verify_chain=true&chain_id={chain_id}&full={'true' if full else 'false'}")
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def wait_checkpoint(cp: ControlPlaneProcess, chain_id: str, size: int) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        resp = requests.get(f"{cp.url}/api/v1/audit/checkpoint?chain_id={chain_id}", timeout=5)
        if resp.status_code == 200 and int(resp.text.split("\n")[1]) >= size:
            return resp.text
        time.sleep(0.2)
    raise AssertionError("no checkpoint")


def seeded(cp: ControlPlaneProcess, chain_id: str, n: int = 10) -> list[dict[str, Any]]:
    records = make_chain(chain_id, n)
    assert ingest(cp, records).json() == {"stored": n, "duplicates": 0}
    wait_checkpoint(cp, chain_id, n)
    assert verify(cp, chain_id)["chain_valid"] is True
    return records


# --- ingest rules ----------------------------------------------------------------------------------------------------


def test_ingest_is_idempotent_and_refuses_broken_history(cpa: ControlPlaneProcess) -> None:
    records = make_chain("ingest", 5)
    assert ingest(cpa, records[:3]).json() == {"stored": 3, "duplicates": 0}
    assert ingest(cpa, records).json() == {"stored": 2, "duplicates": 3}  # at-least-once shipping
    gap = make_chain("ingest", 1, start=7)
    assert (ingest(cpa, gap).status_code, ingest(cpa, gap).json()["error"]) == (409, "gap")
    other = make_chain("ingest", 6)  # a different history for the same positions
    rewritten = {**other[2], "canonical": other[2]["canonical"].replace("orders/3", "orders/X")}
    rewritten["record_hash"] = hashlib.sha256(rewritten["canonical"].encode()).hexdigest()
    assert ingest(cpa, [rewritten]).json()["error"] == "rewritten_history"
    bad_hash = {**make_chain("ingest", 1, start=6, previous=records[-1]["record_hash"])[0], "record_hash": "0" * 64}
    assert ingest(cpa, [bad_hash]).json()["error"] == "hash_mismatch"
    wrong_link = make_chain("ingest", 1, start=6, previous="f" * 64)
    assert ingest(cpa, wrong_link).json()["error"] == "broken_link"
    # the control plane's own chain is no sidecar's: it cannot be enrolled for, and no credential writes it
    assert cpa.admin("POST", "/api/v1/sidecars", {"name": "x", "chains": ["controlplane"]}).status_code == 409
    assert cpa.admin("POST", "/api/v1/sidecars", {"name": "x", "prefixes": ["control"]}).status_code == 409
    own = ingest(cpa, make_chain("controlplane", 1), token=cpa.chain_credential("ingest"))
    assert (own.status_code, own.json()["error"]) == (403, "forbidden")
    alerts = cpa.admin("GET", "/api/v1/audit/alerts").json()["alerts"]
    assert {"gap", "rewritten_history", "hash_mismatch", "broken_link"} <= {a["reason"] for a in alerts}
    stored = cpa.admin("GET", "/api/v1/audit?chain_id=ingest&limit=100").json()["records"]
    assert [r["seq"] for r in stored] == [1, 2, 3, 4, 5]
    assert stored[2]["resource"] == "orders/3"


@pytest.mark.parametrize(
    "body",
    [
        {"records": []},
        {"records": [{"chain_id": "x"}]},
        {"nope": 1},
        [1],
        {"records": [{"chain_id": "x", "seq": True, "record_hash": "0" * 64, "canonical": "{}"}]},
    ],
)
def test_ingest_bad_input(cpa: ControlPlaneProcess, body: Any) -> None:
    resp = requests.post(
        f"{cpa.url}/api/v1/audit/ingest",
        json=body,
        headers={"Authorization": f"Bearer {cpa.chain_credential('x')}"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert (
        requests.post(f"{cpa.url}/api/v1/audit/ingest", json={"records": make_chain("x", 1)}, timeout=10).status_code
        == 401
    )


def test_query_filters_and_pagination(cpa: ControlPlaneProcess) -> None:
    seeded(cpa, "query", 9)
    page = cpa.admin("GET", "/api/v1/audit?chain_id=query&actor=user-1&limit=2").json()
    assert [r["seq"] for r in page["records"]] == [1, 4]
    rest = cpa.admin("GET", f"/api/v1/audit?chain_id=query&actor=user-1&limit=2&cursor={page['next_cursor']}").json()
    assert [r["seq"] for r in rest["records"]] == [7]
    assert cpa.admin("GET", "/api/v1/audit?bogus=1").status_code == 400


def test_own_chain_records_token_events(cpa: ControlPlaneProcess) -> None:
    app = cpa.create_app(name="audited", scopes=["a:read"], grant_types=["client_credentials"])
    cpa.client_token(app)
    rows = cpa.admin("GET", f"/api/v1/audit?chain_id=controlplane&actor={app['client_id']}").json()["records"]
    assert "token.issued" in {r["action"] for r in rows}
    admin = cpa.admin("GET", f"/api/v1/audit?chain_id=controlplane&resource=app/{app['client_id']}").json()["records"]
    assert [(r["actor"], r["action"]) for r in admin] == [("admin", "admin.app_created")]
    assert verify(cpa, "controlplane")["chain_valid"] is True


# --- tamper lab --------------------------------------------------------------------------------------------------------


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


TAMPERS = [
    "modify",
    "delete",
    "reorder",
    "insert",
    "truncate",
    "rehash_all",
    "rehash_last",
    "change_checkpoint",
    "replay_checkpoint",
]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_tamper_lab(cpa: ControlPlaneProcess, tamper: str) -> None:
    chain = f"tamper-{tamper}"
    records = seeded(cpa, chain, 10)
    url = cpa.database_url
    where = f"chain_id = '{chain}'"
    expected: tuple[int | None, set[str]]
    if tamper == "modify":
        changed = records[4]["canonical"].replace("orders.read", "orders.delete")
        db_execute(url, f"UPDATE audit_records SET canonical = '{_sql_text(changed)}' WHERE {where} AND seq = 5")
        expected = (5, {"hash_mismatch"})
    elif tamper == "delete":
        db_execute(url, f"DELETE FROM audit_records WHERE {where} AND seq = 4")
        expected = (4, {"gap"})
    elif tamper == "reorder":
        db_execute(url, f"UPDATE audit_records SET seq = -1 WHERE {where} AND seq = 6")
        db_execute(url, f"UPDATE audit_records SET seq = 6 WHERE {where} AND seq = 7")
        db_execute(url, f"UPDATE audit_records SET seq = 7 WHERE {where} AND seq = -1")
        expected = (6, {"malformed", "broken_link"})
    elif tamper == "insert":
        forged = make_chain(chain, 1, start=3, previous="a" * 64)[0]
        db_execute(url, f"DELETE FROM audit_records WHERE {where} AND seq = 3")
        db_execute(
            url,
            "INSERT INTO audit_records (chain_id, seq, record_id, ts, actor, action, resource, outcome, tenant_id, canonical, record_hash, previous_hash, received_at) "
            f"VALUES ('{chain}', 3, 'forged', '2026-01-01T00:00:00Z', 'mallory', 'x', 'y', 'allow', 't1', '{_sql_text(forged['canonical'])}', '{forged['record_hash']}', '{'a' * 64}', 0)",
        )
        expected = (3, {"broken_link"})
    elif tamper == "truncate":
        db_execute(url, f"DELETE FROM audit_records WHERE {where} AND seq > 7")
        expected = (8, {"truncated"})
    elif tamper in ("rehash_all", "rehash_last"):
        start = 1 if tamper == "rehash_all" else 10
        previous = GENESIS_HASH if start == 1 else records[start - 2]["record_hash"]
        for rec in records[start - 1 :]:
            body = json.loads(rec["canonical"])
            body["outcome"] = "deny"
            fields = {
                k: body[k]
                for k in (
                    "id",
                    "timestamp",
                    "actor",
                    "action",
                    "resource",
                    "outcome",
                    "tenant_id",
                    "ip",
                    "session_id",
                    "reason",
                    "metadata",
                )
            }
            s = seal(validate_fields(fields), chain, rec["seq"], previous)
            db_execute(
                url,
                f"UPDATE audit_records SET canonical = '{_sql_text(s.canonical.decode())}', record_hash = '{s.record_hash}' WHERE {where} AND seq = {rec['seq']}",
            )
            previous = s.record_hash
        expected = (None, {"checkpoint_mismatch"})
    elif tamper == "change_checkpoint":
        # the attacker edits the committed root (say, to match a rewritten chain) but cannot re-sign it
        note = wait_checkpoint(cpa, chain, 10)
        lines = note.split("\n")
        lines[2] = base64.b64encode(b"\x00" * 32).decode()
        db_execute(url, f"UPDATE audit_checkpoints SET note = '{_sql_text(chr(10).join(lines))}' WHERE {where}")
        expected = (None, {"checkpoint_mismatch"})
    else:  # replay_checkpoint: append more records, let a newer checkpoint be signed, then delete it
        assert ingest(cpa, make_chain(chain, 5, start=11, previous=records[-1]["record_hash"])).status_code == 200
        wait_checkpoint(cpa, chain, 15)
        db_execute(url, f"DELETE FROM audit_checkpoints WHERE {where} AND tree_size = 15")
        expected = (11, {"checkpoint_replayed"})
    report = verify(cpa, chain)
    assert report["chain_valid"] is False, report
    bad = report["first_bad"]
    assert bad["chain_id"] == chain
    assert bad["reason"] in expected[1], bad
    if expected[0] is not None:
        assert bad["seq"] == expected[0], bad


def test_offline_verifier_catches_truncation_and_rewrite_with_offbox_checkpoint(
    cpa: ControlPlaneProcess, tmp_path: Path
) -> None:
    chain = "offline"
    records = seeded(cpa, chain, 12)
    offbox = cpa.data_dir / "offbox"
    # the sink mirrors records, then the checkpoint that covers them, in the background: wait for it
    deadline = time.monotonic() + 20
    note = ""
    while time.monotonic() < deadline:
        path = offbox / f"{chain}.checkpoint"
        note = path.read_text() if path.exists() else ""
        if note.count("\n") > 1 and int(note.split("\n")[1]) == 12:
            break
        time.sleep(0.1)
    assert int(note.split("\n")[1]) == 12
    sink_lines = (offbox / f"{chain}.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in sink_lines] == list(range(1, 13))
    key = requests.get(f"{cpa.url}/api/v1/audit/checkpoint-key", timeout=5).json()["verifier_key"]
    coresdk = str(Path(sys.executable).parent / "coresdk")
    checkpoint_file = tmp_path / "checkpoint"
    checkpoint_file.write_text(note)

    def offline(export_text: str) -> tuple[int, dict[str, Any]]:
        export = tmp_path / "export.jsonl"
        export.write_text(export_text)
        run = subprocess.run(
            [
                coresdk,
                "audit",
                "verify",
                "--export",
                str(export),
                "--checkpoint",
                str(checkpoint_file),
                "--pubkey",
                key,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ},
        )
        return run.returncode, json.loads(run.stdout)

    export_text = cpa.admin("GET", f"/api/v1/audit/export?chain_id={chain}").text
    assert offline(export_text) == (0, offline(export_text)[1]) and offline(export_text)[1]["valid"] is True
    # the attacker truncates the tail and deletes the stored checkpoints: the server alone can no longer tell
    db_execute(cpa.database_url, f"DELETE FROM audit_records WHERE chain_id = '{chain}' AND seq > 9")
    db_execute(cpa.database_url, f"DELETE FROM audit_checkpoints WHERE chain_id = '{chain}'")
    code, report = offline(cpa.admin("GET", f"/api/v1/audit/export?chain_id={chain}").text)
    assert (code, report["reason"], report["first_bad_seq"]) == (1, "truncated", 10)
    # a whole-chain rewrite, re-hashed and consistent, still fails against the off-box root
    rewritten = "".join(json.dumps(r) + "\n" for r in make_chain(chain, 12))
    code, report = offline(rewritten)
    assert (code, report["reason"]) == (1, "rewritten")
    assert records  # the original chain was real


def test_proofs_verify_against_the_signed_root(cpa: ControlPlaneProcess) -> None:
    from coresdk.audit.checkpoint import open_checkpoint, parse_verifier_key

    seeded(cpa, "proofs", 13)
    note = wait_checkpoint(cpa, "proofs", 13)
    name, pub = parse_verifier_key(
        requests.get(f"{cpa.url}/api/v1/audit/checkpoint-key", timeout=5).json()["verifier_key"]
    )
    cp = open_checkpoint(note, name, pub)
    for seq in (1, 7, 13):
        p = cpa.admin("GET", f"/api/v1/audit/proof/inclusion?chain_id=proofs&seq={seq}&tree_size=13").json()
        assert merkle.verify_inclusion(
            bytes.fromhex(p["leaf_hash"]), p["leaf_index"], 13, [bytes.fromhex(x) for x in p["proof"]], cp.root_hash
        )
    c = cpa.admin("GET", "/api/v1/audit/proof/consistency?chain_id=proofs&first=5&second=13").json()
    assert merkle.verify_consistency(
        5, 13, [bytes.fromhex(x) for x in c["proof"]], bytes.fromhex(c["first_root"]), cp.root_hash
    )


# --- shipping from a real sidecar ----------------------------------------------------------------------------------


def test_sidecar_ships_through_a_control_plane_outage(cpa: ControlPlaneProcess, jwks: Any) -> None:
    sidecar = SidecarProcess(
        {
            **trusting(jwks.url),
            "CORESDK_CP_URL": cpa.url,
            "CORESDK_CP_TOKEN": cpa.chain_credential(f"shipped-{cpa.port}"),
            "CORESDK_AUDIT_CHAIN": f"shipped-{cpa.port}",
        }
    )
    chain = f"shipped-{cpa.port}"

    async def append(n: int) -> list[int]:
        async with grpc.aio.insecure_channel(sidecar.target) as ch:
            stub = audit_pb2_grpc.AuditServiceStub(ch)
            out = []
            for i in range(n):
                r = await stub.Append(
                    audit_pb2.AppendRequest(record=audit_pb2.AuditRecord(actor=f"a{i}", action="x.y", outcome="allow"))
                )
                out.append(r.seq)
            return out

    def stored() -> list[int]:
        return [r["seq"] for r in cpa.admin("GET", f"/api/v1/audit?chain_id={chain}&limit=1000").json()["records"]]

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(stored()) < n:
            time.sleep(0.2)
        assert stored() == list(range(1, n + 1))

    try:
        assert asyncio.run(append(5)) == [1, 2, 3, 4, 5]
        wait_for(5)
        cpa.stop()
        assert asyncio.run(append(5)) == [6, 7, 8, 9, 10]  # acknowledged locally while the control plane is down
        cpa.start()
        wait_for(10)
        sidecar.stop()  # and a sidecar restart resumes from its acknowledged position without resending
        sidecar.start()
        assert asyncio.run(append(2)) == [11, 12]
        wait_for(12)
        assert verify(cpa, chain)["chain_valid"] is True
    finally:
        sidecar.stop()


def test_postgresql_restart_loses_nothing(postgres: Any, jwks: Any, tmp_path: Path) -> None:
    cp = ControlPlaneProcess(tmp_path / "cp", postgres.new_database(), CORESDK_AUDIT_CHECKPOINT_SECONDS="0.5")
    chain = "pg-restart"
    sidecar = SidecarProcess(
        {
            **trusting(jwks.url),
            "CORESDK_CP_URL": cp.url,
            "CORESDK_CP_TOKEN": cp.chain_credential(chain),
            "CORESDK_AUDIT_CHAIN": chain,
        }
    )

    async def append(n: int) -> None:
        async with grpc.aio.insecure_channel(sidecar.target) as ch:
            stub = audit_pb2_grpc.AuditServiceStub(ch)
            for i in range(n):
                await stub.Append(
                    audit_pb2.AppendRequest(record=audit_pb2.AuditRecord(actor=f"a{i}", action="x.y", outcome="allow"))
                )

    def stored() -> list[int]:
        resp = cp.admin("GET", f"/api/v1/audit?chain_id={chain}&limit=1000")
        return [r["seq"] for r in resp.json()["records"]] if resp.status_code == 200 else []

    try:
        asyncio.run(append(5))
        postgres.restart()
        asyncio.run(append(5))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stored() != list(range(1, 11)):
            time.sleep(0.3)
        assert stored() == list(range(1, 11))
        assert verify(cp, chain)["chain_valid"] is True
        # the token endpoint recovered too (the pool dropped its dead connections)
        app = cp.create_app(name="after-restart", scopes=["a:read"], grant_types=["client_credentials"])
        assert cp.client_token(app)
        # and the background work: the replica leads again (its lock session died with the old server)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not cp.admin("GET", "/api/v1/replica").json()["leading"]:
            time.sleep(0.3)
        assert cp.admin("GET", "/api/v1/replica").json()["leading"] is True
        time.sleep(1.5)  # let the leader confirm its new lock at least once before it is stopped
    finally:
        sidecar.stop()
        code = cp.stop()
    assert code == 0, cp.output()  # stopping after a database restart is a clean stop, not a crash


def test_retention_prunes_a_sealed_prefix_and_what_remains_verifies(cpa: ControlPlaneProcess) -> None:
    chain = "retention"
    previous, records = GENESIS_HASH, []
    for seq in range(1, 9):
        stamp = f"2020-01-0{seq}T00:00:00.000000Z" if seq <= 5 else f"2026-11-0{seq}T00:00:00.000000Z"
        body = validate_fields({"actor": "a", "action": "x.y", "outcome": "allow", "timestamp": stamp})
        s = seal(body, chain, seq, previous)
        records.append({"chain_id": chain, "seq": seq, "record_hash": s.record_hash, "canonical": s.canonical.decode()})
        previous = s.record_hash
    assert ingest(cpa, records).status_code == 200
    wait_checkpoint(cpa, chain, 8)
    # nothing is pruned before every sink has it: retry (prune is idempotent) until the sink has caught up
    deadline = time.monotonic() + 15
    item: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = cpa.admin("POST", "/api/v1/audit/prune", {"before": "2021-01-01T00:00:00Z"})
        assert resp.status_code == 200, resp.text
        item = next((p for p in resp.json()["pruned"] if p["chain_id"] == chain), item)
        if item.get("pruned_through") == 5:
            break
        time.sleep(0.3)
    assert item["pruned_through"] == 5
    assert len((cpa.data_dir / "offbox" / f"{chain}.jsonl").read_text().splitlines()) == 8
    assert [r["seq"] for r in cpa.admin("GET", f"/api/v1/audit?chain_id={chain}").json()["records"]] == [6, 7, 8]
    report = verify(cpa, chain)
    assert report["chain_valid"] is True, report
    assert report["chains"][0]["pruned_through"] == 5
    assert report["chains"][0]["records_checked"] == 3
    # the pruned range is sealed: altering a pruned record's hash breaks the retention checkpoint
    db_execute(
        cpa.database_url, f"UPDATE audit_records SET record_hash = '{'1' * 64}' WHERE chain_id = '{chain}' AND seq = 2"
    )
    broken = verify(cpa, chain)
    assert broken["chain_valid"] is False
    assert broken["first_bad"]["reason"] == "retention_mismatch"
