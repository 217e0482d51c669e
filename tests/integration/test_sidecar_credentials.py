"""Each sidecar its own credential (finding 5), on both storage backends: a credential writes only the chains it is
bound to, the backdating attack goes nowhere, revocation is one sidecar at a time, the shared token works only in
development, and the doctor and the CLI know all of it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests

from coresdk.cli import main as cli_main
from coresdk.doctor.credentials import CHECKS as CREDENTIAL_CHECKS
from coresdk.doctor.model import Context as DoctorContext
from coresdk.doctor.model import Status
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.integration.test_audit_controlplane import ingest, make_chain
from tests.support.controlplane import ADMIN_TOKEN, SIDECAR_TOKEN, ControlPlaneProcess
from tests.support.dbaccess import db_dump
from tests.support.processes import SidecarProcess


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def sidecar_id(credential: str) -> str:
    return credential.partition(".")[0]


def feed(cp: ControlPlaneProcess, token: str) -> requests.Response:
    return requests.get(
        f"{cp.url}/api/v1/revocations?since=0", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def stored_seqs(cp: ControlPlaneProcess, chain: str) -> list[int]:
    return [r["seq"] for r in cp.admin("GET", f"/api/v1/audit?chain_id={chain}&limit=1000").json()["records"]]


def _head(cp: ControlPlaneProcess, chain: str) -> str:
    records = cp.admin("GET", f"/api/v1/audit?chain_id={chain}&limit=1000").json()["records"]
    return str(records[-1]["record_hash"])


@pytest.fixture(scope="module")
def cpdev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    directory = tmp_path_factory.mktemp("cp-development")
    proc = ControlPlaneProcess(directory, f"sqlite:///{directory / 'controlplane.db'}", CORESDK_ENV="development")
    yield proc
    assert proc.stop() == 0, proc.output()


def test_a_credential_writes_only_the_chains_it_is_bound_to(cp: ControlPlaneProcess) -> None:
    a_chain, b_chain = unique("a"), unique("b")
    a, b = cp.enrol_sidecar([a_chain], name="sidecar-a"), cp.enrol_sidecar([b_chain], name="sidecar-b")
    assert ingest(cp, make_chain(a_chain, 2), token=a).json() == {"stored": 2, "duplicates": 0}
    refused = ingest(cp, make_chain(b_chain, 1), token=a)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "forbidden",
        "error_description": f"sidecar {sidecar_id(a)} is not enrolled for chain {b_chain}",
    }
    mixed = make_chain(a_chain, 1, start=3, previous=_head(cp, a_chain))
    assert ingest(cp, mixed + make_chain(b_chain, 1), token=a).status_code == 403
    assert stored_seqs(cp, a_chain) == [1, 2] and stored_seqs(cp, b_chain) == []  # nothing of the batch stored
    assert ingest(cp, make_chain(b_chain, 1), token=b).status_code == 200


def test_backdating_into_another_sidecars_chain_is_refused(cp: ControlPlaneProcess) -> None:
    """Finding 5: with the one shared token, a record slipped into another sidecar's chain at its next position made
    that sidecar's real record a 409 rewritten_history."""
    victim_chain = unique("victim")
    victim = cp.enrol_sidecar([victim_chain], name="victim")
    attacker = cp.enrol_sidecar([unique("attacker")], name="attacker")
    real = make_chain(victim_chain, 4)
    assert ingest(cp, real[:3], token=victim).status_code == 200
    forged = make_chain(victim_chain, 1, start=4, previous=real[2]["record_hash"])
    assert ingest(cp, forged, token=attacker).status_code == 403
    assert ingest(cp, forged, token=SIDECAR_TOKEN).status_code == 401  # nor with the shared token (production)
    assert ingest(cp, real[3:], token=victim).json() == {"stored": 1, "duplicates": 0}
    report = cp.admin("GET", f"/api/v1/audit?verify_chain=true&chain_id={victim_chain}").json()
    assert report["chain_valid"] is True
    alerts = cp.admin("GET", "/api/v1/audit/alerts").json()["alerts"]
    assert not [a for a in alerts if a["chain_id"] == victim_chain]


def test_a_revoked_credential_is_refused_and_no_other_is_touched(cp: ControlPlaneProcess) -> None:
    chain, other_chain = unique("revoked"), unique("kept")
    doomed, kept = cp.enrol_sidecar([chain], name="doomed"), cp.enrol_sidecar([other_chain], name="kept")
    assert ingest(cp, make_chain(chain, 1), token=doomed).status_code == 200
    assert feed(cp, doomed).status_code == 200
    assert cp.admin("DELETE", f"/api/v1/sidecars/{sidecar_id(doomed)}").status_code == 204
    assert cp.admin("DELETE", f"/api/v1/sidecars/{sidecar_id(doomed)}").status_code == 204  # idempotent
    assert cp.admin("DELETE", "/api/v1/sidecars/sc_000000000000000000000000").status_code == 404
    for resp in (ingest(cp, make_chain(chain, 1), token=doomed), feed(cp, doomed)):
        assert resp.status_code == 401
        assert resp.json()["error_description"] == f"the credential of sidecar {sidecar_id(doomed)} is revoked"
    assert ingest(cp, make_chain(other_chain, 1), token=kept).status_code == 200
    assert feed(cp, kept).status_code == 200
    listed = {s["id"]: s for s in cp.admin("GET", "/api/v1/sidecars").json()["sidecars"]}
    assert listed[sidecar_id(doomed)]["revoked_at"] is not None
    assert listed[sidecar_id(kept)]["revoked_at"] is None
    # the chain is free again: a replacement sidecar enrols for it and continues it
    replacement = cp.enrol_sidecar([chain], name="replacement")
    continued = make_chain(chain, 1, start=2, previous=_head(cp, chain))
    assert ingest(cp, continued, token=replacement).json() == {"stored": 1, "duplicates": 0}


def test_the_shared_token_is_refused_in_production(cp: ControlPlaneProcess) -> None:
    for resp in (ingest(cp, make_chain(unique("shared"), 1), token=SIDECAR_TOKEN), feed(cp, SIDECAR_TOKEN)):
        assert resp.status_code == 401
        assert "accepted only in development" in resp.json()["error_description"]
    assert cp.admin("GET", "/api/v1/sidecars").json()["shared_token_accepted"] is False


def test_the_shared_token_works_in_development(cpdev: ControlPlaneProcess) -> None:
    assert ingest(cpdev, make_chain(unique("dev"), 2), token=SIDECAR_TOKEN).json() == {"stored": 2, "duplicates": 0}
    assert feed(cpdev, SIDECAR_TOKEN).status_code == 200
    assert cpdev.admin("GET", "/api/v1/sidecars").json()["shared_token_accepted"] is True
    # an enrolled sidecar is still held to its binding in development
    mine = cpdev.enrol_sidecar([unique("mine")])
    assert ingest(cpdev, make_chain(unique("theirs"), 1), token=mine).status_code == 403


def test_bindings_never_overlap_and_a_prefix_binds_a_family(cp: ControlPlaneProcess) -> None:
    prefix = unique("fam") + "."
    family = cp.enrol_sidecar(prefixes=[prefix], name="family")
    assert ingest(cp, make_chain(prefix + "orders", 1), token=family).status_code == 200
    assert ingest(cp, make_chain(prefix + "billing", 1), token=family).status_code == 200
    assert ingest(cp, make_chain(unique("outside"), 1), token=family).status_code == 403
    for binding in ({"chains": [prefix + "x"]}, {"prefixes": [prefix + "sub"]}, {"prefixes": [prefix[:-1]]}):
        resp = cp.admin("POST", "/api/v1/sidecars", {"name": "overlap", **binding})
        assert resp.status_code == 409, binding
        assert sidecar_id(family) in resp.json()["error_description"]
    bad: list[tuple[Any, str]] = [
        ({"name": "x"}, "invalid_request"),
        ({"name": "x", "chains": ["a/b"]}, "invalid_chain_id"),
        ({"name": "x", "prefixes": [""]}, "invalid_chain_id"),
        ({"name": "x", "chains": "abc"}, "invalid_request"),
        ({"name": "x", "chains": ["a", "a"]}, "invalid_request"),
        ({"name": "x y", "chains": [unique("c")]}, "invalid_request"),
        ({"name": "x", "chains": [unique("c")], "secret": "mine"}, "invalid_request"),
    ]
    for body, error in bad:
        resp = cp.admin("POST", "/api/v1/sidecars", body)
        assert (resp.status_code, resp.json()["error"]) == (400, error), body
    assert cp.admin("POST", "/api/v1/sidecars", {"name": "x", "chains": ["c"]}, token=family).status_code == 401
    assert cp.admin("GET", "/api/v1/sidecars", token=SIDECAR_TOKEN).status_code == 401


def test_enrolment_and_revocation_are_events_in_the_control_planes_chain(cp: ControlPlaneProcess) -> None:
    chain = unique("evented")
    credential = cp.enrol_sidecar([chain], name="evented")
    assert cp.admin("DELETE", f"/api/v1/sidecars/{sidecar_id(credential)}").status_code == 204
    resource = f"sidecar/{sidecar_id(credential)}"
    for action in ("sidecar.enrol", "sidecar.revoke"):
        rows = cp.admin("GET", f"/api/v1/audit?chain_id=controlplane&action={action}&resource={resource}").json()
        assert len(rows["records"]) == 1, action
        assert rows["records"][0]["metadata"]["chains"] == [chain]
        assert rows["records"][0]["actor"] == "admin"
    assert cp.admin("GET", "/api/v1/audit?verify_chain=true&chain_id=controlplane").json()["chain_valid"] is True


def test_credentials_are_stored_only_as_hashes(cp: ControlPlaneProcess) -> None:
    credential = cp.enrol_sidecar([unique("hashed")], name="hashed")
    secret = credential.partition(".")[2]
    dump = db_dump(cp.database_url)
    assert secret not in dump
    assert hashlib.sha256(secret.encode()).hexdigest() in dump
    listing = cp.admin("GET", "/api/v1/sidecars").text
    assert secret not in listing and "secret_hash" not in listing


def test_a_sidecar_ships_with_its_own_credential_and_a_refused_chain_blocks_nothing(cp: ControlPlaneProcess) -> None:
    sidecar = SidecarProcess(cp.sidecar_env())
    chain, foreign = sidecar.env["CORESDK_AUDIT_CHAIN"], unique("not-mine")

    async def append() -> None:
        async with grpc.aio.insecure_channel(sidecar.target) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            for i in range(2):  # first a chain this sidecar is not enrolled for: refused at ingest, held back
                record = audit_pb2.AuditRecord(actor=f"a{i}", action="x.y", outcome="allow", chain_id=foreign)
                await stub.Append(audit_pb2.AppendRequest(record=record))
            for i in range(3):
                record = audit_pb2.AuditRecord(actor=f"b{i}", action="x.y", outcome="allow")
                await stub.Append(audit_pb2.AppendRequest(record=record))

    try:
        asyncio.run(append())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and stored_seqs(cp, chain) != [1, 2, 3]:
            time.sleep(0.2)
        assert stored_seqs(cp, chain) == [1, 2, 3]
        assert stored_seqs(cp, foreign) == []
    finally:
        assert sidecar.stop() == 0, sidecar.output()
    assert f"audit shipping of chain {foreign} refused by the control plane (HTTP 403)" in sidecar.log_path.read_text()


# --- the doctor and the CLI ---------------------------------------------------------------------------------------


def doctor(cp: ControlPlaneProcess, **env: str) -> tuple[Status, str]:
    base = {"CORESDK_CP_URL": cp.url, "CPOD_ADMIN_TOKEN": ADMIN_TOKEN, "CORESDK_ENV": "production"}
    result = CREDENTIAL_CHECKS[0](DoctorContext({**base, **env}))
    return result.status, result.detail


def test_the_doctor_fails_the_shared_token_and_passes_an_enrolled_credential(
    cp: ControlPlaneProcess, cpdev: ControlPlaneProcess
) -> None:
    enrolled = cp.enrol_sidecar([unique("doctor")], name="doctor")
    assert doctor(cp, CORESDK_CP_TOKEN=enrolled)[0] is Status.PASS
    status, detail = doctor(cp, CORESDK_CP_TOKEN=SIDECAR_TOKEN, CORESDK_SIDECAR_TOKEN=SIDECAR_TOKEN)
    assert status is Status.FAIL and "presents the shared CORESDK_SIDECAR_TOKEN" in detail
    assert doctor(cp, CORESDK_CP_TOKEN=SIDECAR_TOKEN)[0] is Status.FAIL  # not an enrolled credential, whatever it is
    assert cp.admin("DELETE", f"/api/v1/sidecars/{sidecar_id(enrolled)}").status_code == 204
    status, detail = doctor(cp, CORESDK_CP_TOKEN=enrolled)
    assert status is Status.FAIL and "revoked or unknown" in detail
    # a control plane that accepts the shared token, in a deployment that says production
    dev_enrolled = cpdev.enrol_sidecar([unique("doctor-dev")], name="doctor-dev")
    status, detail = doctor(cpdev, CORESDK_CP_TOKEN=dev_enrolled, CORESDK_SIDECAR_TOKEN=SIDECAR_TOKEN)
    assert status is Status.FAIL and "accepts the shared CORESDK_SIDECAR_TOKEN" in detail
    # the same, declared as development (what `coresdk dev` runs): a warning, not a failure
    assert doctor(cpdev, CORESDK_CP_TOKEN=dev_enrolled, CORESDK_ENV="development")[0] is Status.WARN


def test_coresdk_sidecar_enrol_list_revoke(
    cp: ControlPlaneProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CPOD_ADMIN_TOKEN", ADMIN_TOKEN)
    chain = unique("cli")
    assert cli_main(["sidecar", "enrol", "--name", "cli", "--chain", chain, "--cp-url", cp.url]) == 0
    out = capsys.readouterr()
    enrolled = json.loads(out.out)
    assert enrolled["chains"] == [chain] and "shown only now" in out.err
    assert ingest(cp, make_chain(chain, 1), token=enrolled["credential"]).status_code == 200
    assert cli_main(["sidecar", "list", "--cp-url", cp.url]) == 0
    assert enrolled["id"] in capsys.readouterr().out
    assert cli_main(["sidecar", "revoke", enrolled["id"], "--cp-url", cp.url]) == 0
    assert capsys.readouterr().out.strip() == f"sidecar {enrolled['id']} revoked"
    assert cli_main(["sidecar", "enrol", "--name", "cli", "--chain", chain, "--cp-url", cp.url]) == 0  # freed
    capsys.readouterr()
    assert cli_main(["sidecar", "enrol", "--name", "cli", "--chain", chain, "--cp-url", cp.url]) == 1  # overlap
    assert "409" in capsys.readouterr().err
    assert cli_main(["sidecar", "enrol", "--name", "cli", "--cp-url", cp.url]) == 2
