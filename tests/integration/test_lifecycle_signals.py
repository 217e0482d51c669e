"""SIGTERM while a service is still starting, and a second SIGTERM while it stops: the process ends promptly with
status 0 (a stop was asked for, nothing failed), however far its start had come."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests

from coresdk.audit.journal import Journal
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.support.controlplane import ControlPlaneProcess
from tests.support.gateway import GatewayProcess
from tests.support.jwks_server import JwksServer
from tests.support.processes import ROOT, SidecarProcess, trusting
from tests.support.silent_server import SilentServer
from tests.support.tokens import SigningKey, claims

STOPS_WITHIN = 15.0  # seconds: graceful stops are bounded well below this


class _Unstarted(ControlPlaneProcess):
    """The control plane's settings without starting it (the test starts it itself)."""

    def start(self) -> None:
        pass


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def _popen(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def _stopped(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(STOPS_WITHIN)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_while_the_database_does_not_answer_stops_the_control_plane(
    silent: SilentServer, tmp_path: Path
) -> None:
    settings = _Unstarted(tmp_path, f"postgresql://postgres@127.0.0.1:{silent.port}/coresdk")
    proc = _popen("controlplane", settings.env, tmp_path / "cp.log")
    try:
        assert silent.connected.wait(20), (tmp_path / "cp.log").read_text()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.terminate()
    code = _stopped(proc)
    output = (tmp_path / "cp.log").read_text(errors="replace")
    assert code == 0, f"exit status {code} (None: still running after {STOPS_WITHIN} s):\n{output}"
    assert "Traceback" not in output, output


async def _append_until_refused(target: str, acked: list[str], stop_after: asyncio.Event) -> None:
    """Append records one after another on one channel until the sidecar stops answering; ids of those answered."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        i = 0
        while True:
            i += 1
            record = audit_pb2.AuditRecord(
                actor=f"user-{i}", action="orders.read", resource=f"orders/{i}", outcome="allow", tenant_id="t1"
            )
            try:
                reply = await stub.Append(audit_pb2.AppendRequest(record=record), timeout=5)
            except grpc.aio.AioRpcError:
                return
            acked.append(reply.id)
            if len(acked) >= 20:
                stop_after.set()


def test_two_sigterms_while_appending_stop_the_sidecar_and_keep_every_acknowledged_record(
    jwks: JwksServer,
) -> None:
    """A supervisor's SIGTERM, then a second one while the sidecar drains: status 0, and every record it
    acknowledged is in its journal (an acknowledgement means durable)."""
    sidecar = SidecarProcess(trusting(jwks.url))
    acked: list[str] = []

    async def run() -> None:
        enough = asyncio.Event()
        writers = [asyncio.create_task(_append_until_refused(sidecar.target, acked, enough)) for _ in range(8)]
        await asyncio.wait_for(enough.wait(), 20)
        sidecar.proc.terminate()
        await asyncio.sleep(0.05)
        if sidecar.proc.poll() is None:
            sidecar.proc.terminate()
        await asyncio.wait_for(asyncio.gather(*writers), STOPS_WITHIN)

    try:
        asyncio.run(run())
        code = _stopped(sidecar.proc)
        assert code == 0, f"exit status {code}:\n{sidecar.output()}"
        stored = {
            json.loads(e.canonical)["id"]
            for e in Journal(Path(sidecar.env["CORESDK_DATA_DIR"]) / "audit", 1 << 30).read_all()
        }
        assert set(acked) <= stored, sorted(set(acked) - stored)[:5]
        assert "Traceback" not in sidecar.output(), sidecar.output()
    finally:
        sidecar.stop()


@pytest.mark.xfail(
    strict=True,
    reason="known and left: the SIGTERM handler (coresdk/runtime.py stop_signal) is installed inside asyncio.run, "
    "after the imports and the configuration load (~0.7 s); a SIGTERM in that window ends the process by the signal "
    "(status -15, 143 to a shell), before it has opened or started anything",
)
@pytest.mark.parametrize("module", ["sidecar", "controlplane", "gateway"])
def test_sigterm_while_importing_exits_0(module: str, tmp_path: Path) -> None:
    settings = _Unstarted(tmp_path, f"sqlite:///{tmp_path / 'cp.db'}")  # any settings: it never gets that far
    proc = _popen(module, settings.env, tmp_path / "out.log")
    time.sleep(0.2)  # well inside its imports (grpc, aiohttp, cryptography)
    proc.terminate()
    code = _stopped(proc)
    assert code == 0, f"exit status {code}:\n{(tmp_path / 'out.log').read_text(errors='replace')}"


def test_a_second_sigterm_ends_a_gateway_draining_a_silent_upstream(silent: SilentServer) -> None:
    key = SigningKey.rsa("life-drain")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    gateway = GatewayProcess(silent, trusting(jwks.url), env={"CORESDK_GATEWAY_TIMEOUT": "120"})
    answered: list[object] = []

    def call() -> None:
        try:
            headers = {"Authorization": f"Bearer {key.sign(claims())}"}
            answered.append(requests.get(f"{gateway.url}/v1/orders", headers=headers, timeout=STOPS_WITHIN * 2))
        except requests.RequestException as exc:
            answered.append(exc)

    client = threading.Thread(target=call, daemon=True)
    client.start()
    try:
        assert silent.connected.wait(10), gateway.log_path.read_text()
        gateway.proc.terminate()
        time.sleep(0.5)  # the drain has begun
        gateway.proc.terminate()
        code = _stopped(gateway.proc)
        assert code == 0, f"exit status {code} (None: still draining after {STOPS_WITHIN} s)"
    finally:
        if gateway.proc.poll() is None:
            gateway.proc.kill()
        gateway.proc.wait()
        jwks.close()
        client.join(STOPS_WITHIN * 2)
