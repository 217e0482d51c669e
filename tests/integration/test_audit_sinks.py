"""Off-box sinks receive every record and checkpoint, in order, through their own outages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.test_audit_controlplane import ingest, make_chain
from tests.support.collectors import HecCollector, SyslogCollector
from tests.support.controlplane import ControlPlaneProcess

HEC_TOKEN = "hec-token-0123456789"


@pytest.fixture(scope="module")
def sinks(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ControlPlaneProcess, SyslogCollector, HecCollector]]:
    syslog, hec = SyslogCollector(), HecCollector(HEC_TOKEN)
    directory = tmp_path_factory.mktemp("cp-sinks")
    cp = ControlPlaneProcess(
        directory,
        f"sqlite:///{directory / 'cp.db'}",
        CORESDK_AUDIT_CHECKPOINT_SECONDS="0.5",
        CORESDK_AUDIT_SYSLOG_ADDR=f"127.0.0.1:{syslog.port}",
        CORESDK_AUDIT_HEC_URL=hec.url,
        CORESDK_AUDIT_HEC_TOKEN=HEC_TOKEN,
        CORESDK_AUDIT_SINK_DIR=str(directory / "offbox"),
    )
    yield cp, syslog, hec
    cp.stop()
    syslog.close()
    hec.close()


def eventually(check: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    assert check()


def syslog_seqs(syslog: SyslogCollector, chain: str) -> list[int]:
    out = []
    for m in syslog.messages:
        if f'chain_id="{chain}"' in m and " audit " in m:
            out.append(int(re.search(r' seq="(\d+)"', m).group(1)))  # type: ignore[union-attr]
    return out


def hec_seqs(hec: HecCollector, chain: str) -> list[int]:
    return [
        e["fields"]["seq"]
        for e in hec.events
        if e.get("sourcetype") == "coresdk:audit" and e["fields"]["chain_id"] == chain
    ]


def test_syslog_and_hec_receive_records_and_checkpoints(sinks: Any) -> None:
    cp, syslog, hec = sinks
    assert ingest(cp, make_chain("sinks-a", 6)).status_code == 200
    eventually(
        lambda: syslog_seqs(syslog, "sinks-a") == [1, 2, 3, 4, 5, 6] and hec_seqs(hec, "sinks-a") == [1, 2, 3, 4, 5, 6]
    )
    first = next(m for m in syslog.messages if 'chain_id="sinks-a"' in m)
    assert re.match(
        r"<110>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ coresdk - audit \[coresdk@32473 chain_id=\"sinks-a\" seq=\"1\" record_hash=\"[0-9a-f]{64}\" previous_hash=\"0{64}\"\] \{",
        first,
    )
    eventually(lambda: any(" checkpoint " in m and 'chain_id="sinks-a"' in m for m in syslog.messages))
    eventually(
        lambda: any(
            e.get("sourcetype") == "coresdk:checkpoint" and e["event"]["chain_id"] == "sinks-a" for e in hec.events
        )
    )


def test_sinks_down_lose_nothing_and_never_block_ingest(sinks: Any) -> None:
    cp, syslog, hec = sinks
    records = make_chain("sinks-b", 12)
    assert ingest(cp, records[:4]).status_code == 200
    eventually(lambda: syslog_seqs(syslog, "sinks-b") == [1, 2, 3, 4] and hec_seqs(hec, "sinks-b") == [1, 2, 3, 4])
    syslog.down()
    hec.failing = True
    try:
        # Ingest completes while both sinks are down (they stay down until `finally`): it never waits for them.
        assert ingest(cp, records[4:]).json() == {"stored": 8, "duplicates": 0}
        stored = cp.admin("GET", "/api/v1/audit?chain_id=sinks-b&limit=100").json()["records"]
        assert [r["seq"] for r in stored] == list(range(1, 13))
        eventually(lambda: hec.rejected > 0)
    finally:
        syslog.up()
        hec.failing = False
    eventually(lambda: syslog_seqs(syslog, "sinks-b") == list(range(1, 13)), within=45)
    eventually(lambda: hec_seqs(hec, "sinks-b") == list(range(1, 13)), within=45)
    offbox = Path(cp.data_dir / "offbox" / "sinks-b.jsonl")
    eventually(lambda: len(offbox.read_text().splitlines()) == 12)
    assert requests.get(f"{cp.url}/healthz", timeout=5).status_code == 200
