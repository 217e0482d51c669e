"""A killed gateway loses nothing it answered: every request the application saw through the gateway has its audit
record in the gateway's journal after kill -9, the chain is intact, and the restarted gateway ships it all."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.journal import Journal
from tests.support.gateway import GatewayProcess
from tests.support.rawhttp import raw_request
from tests.system.conftest import ROUTES, System


def _records(data_dir: Path, chain: str) -> list[dict[str, object]]:
    entries = [e for e in Journal(data_dir / "gateway-audit", 1 << 30).read_all() if e.chain_id == chain]
    stored = [StoredRecord(e.chain_id, e.seq, e.canonical, e.record_hash) for e in entries]
    assert verify_chain(chain, stored).failure is None
    return [json.loads(e.canonical) for e in entries]


def test_kill_9_mid_traffic_loses_no_answered_request(system: System) -> None:
    chain = "system-crash-gateway"
    gw = GatewayProcess(
        system.upstream,
        system.sidecar,
        cp_url=system.cp.url,
        routes_file=ROUTES,
        env={"CORESDK_GATEWAY_AUDIT_CHAIN": chain},
    )
    data_dir = Path(gw.env["CORESDK_DATA_DIR"])
    before = len(system.upstream.seen)

    def one(_: int) -> int:
        try:
            resp = raw_request(
                gw.port, "GET", "/v1/agent/tasks", [("Authorization", f"Bearer {system.tasks_reader}")], timeout=5
            )
            return resp.status
        except (OSError, ValueError, IndexError):
            return 0

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(400)]
        time.sleep(0.4)
        gw.proc.send_signal(signal.SIGKILL)  # a crash: no shutdown code runs
        gw.proc.wait(10)
        statuses = [f.result() for f in futures]
    answered = statuses.count(200)
    forwarded = {str(s["headers"].get("X-Request-ID")) for s in system.upstream.seen[before:]}
    assert answered > 0 and len(forwarded) >= answered
    recorded = {str(r["metadata"]["request_id"]) for r in _records(data_dir, chain)}  # type: ignore[index]
    # every request that reached the application was recorded before its answer was relayed
    answered_ids = forwarded & recorded
    assert len(answered_ids) >= answered, (answered, len(forwarded), len(recorded))

    restarted = GatewayProcess(
        system.upstream,
        system.sidecar,
        cp_url=system.cp.url,
        routes_file=ROUTES,
        env={"CORESDK_GATEWAY_AUDIT_CHAIN": chain, "CORESDK_DATA_DIR": str(data_dir)},
    )
    try:
        assert (
            raw_request(
                restarted.port, "GET", "/v1/agent/tasks", [("Authorization", f"Bearer {system.tasks_reader}")]
            ).status
            == 200
        )
        total = len(_records(data_dir, chain))
        deadline = time.monotonic() + 30
        shipped = 0
        while time.monotonic() < deadline:
            report = system.cp.admin("GET", f"/api/v1/audit?verify_chain=true&chain_id={chain}").json()
            shipped = report["records_checked"]
            if shipped >= total:
                break
            time.sleep(0.3)
        assert shipped >= total and report["chain_valid"] is True
    finally:
        restarted.stop()
