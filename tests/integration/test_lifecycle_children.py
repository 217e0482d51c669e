"""Children never outlive their parent: the sidecar's verification workers (CORESDK_AUTH_WORKERS) and the control
plane's signer processes, after the parent is killed outright (SIGKILL: no shutdown code runs, as in an OOM kill)
or is stopped by a terminal's ^C (SIGINT to the whole foreground process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlaneProcess
from tests.support.jwks_server import JwksServer
from tests.support.lifecycle import cmdline, descendants, kill_all, poll, survivors
from tests.support.processes import ROOT, SidecarProcess, trusting
from tests.support.tokens import SigningKey

GONE_WITHIN = 10.0  # seconds a child is given to notice its parent is gone


@pytest.fixture
def worker_jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [SigningKey.rsa("life-rs").jwk()]
    yield server
    server.close()


def _workers_of(pid: int) -> list[int]:
    """The sidecar's multiprocessing children (the verification workers and the resource tracker)."""

    def found() -> list[int]:
        return [p for p in descendants(pid) if "multiprocessing" in cmdline(p)]

    poll(lambda: len(found()) >= 2, 10)
    return found()


def test_auth_workers_exit_when_the_sidecar_is_killed(worker_jwks: JwksServer) -> None:
    sidecar = SidecarProcess(trusting(worker_jwks.url, CORESDK_AUTH_WORKERS="2"))
    workers = _workers_of(sidecar.proc.pid)
    try:
        assert len(workers) >= 2, [cmdline(p) for p in descendants(sidecar.proc.pid)]
        sidecar.kill()
        left = survivors(workers, GONE_WITHIN)
        assert not left, [cmdline(p) for p in left]
    finally:
        sidecar.stop()
        kill_all(workers)


def test_auth_workers_exit_with_a_gracefully_stopped_sidecar(worker_jwks: JwksServer) -> None:
    sidecar = SidecarProcess(trusting(worker_jwks.url, CORESDK_AUTH_WORKERS="2"))
    workers = _workers_of(sidecar.proc.pid)
    try:
        assert sidecar.stop() == 0, sidecar.output()
        assert not survivors(workers, GONE_WITHIN)
    finally:
        kill_all(workers)


def test_signers_exit_when_the_control_plane_is_killed(tmp_path: Path) -> None:
    cp = ControlPlaneProcess(tmp_path, f"sqlite:///{tmp_path / 'cp.db'}")
    assert cp.proc is not None
    signers = [p for p in descendants(cp.proc.pid) if "controlplane.keys.signer" in cmdline(p)]
    try:
        assert signers
        cp.proc.kill()
        cp.proc.wait()
        assert not survivors(signers, GONE_WITHIN)
    finally:
        cp.stop()
        kill_all(signers)


def _group_interrupt(proc: subprocess.Popen[bytes]) -> int | None:
    """^C in a terminal: SIGINT to every process of the foreground group; the exit status (None: still running)."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        return None


class _SessionSidecar(SidecarProcess):
    """A sidecar leading a process group of its own, as a service started from a terminal leads the foreground."""

    def start(self, wait_ready: bool = True) -> None:
        if self._log.closed:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar"],
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_ready:
            self.wait_ready()


def test_interrupt_from_a_terminal_stops_a_sidecar_with_workers_cleanly(worker_jwks: JwksServer) -> None:
    sidecar = _SessionSidecar(trusting(worker_jwks.url, CORESDK_AUTH_WORKERS="2"))
    workers = _workers_of(sidecar.proc.pid)
    try:
        code = _group_interrupt(sidecar.proc)
        output = sidecar.output()
        assert code == 0, output
        assert "Traceback" not in output, output
        assert not survivors(workers, GONE_WITHIN)
    finally:
        sidecar.stop()
        kill_all(workers)


def _session_control_plane(tmp_path: Path) -> tuple[ControlPlaneProcess, subprocess.Popen[bytes]]:
    """A control plane leading a process group of its own (the test starts it itself)."""
    cp = ControlPlaneProcess(tmp_path, f"sqlite:///{tmp_path / 'cp.db'}")
    cp.stop()  # restarted below as the leader of its own process group
    log = open(cp.log_path, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane"],
        env=cp.env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return cp, proc


def _since_restart(cp: ControlPlaneProcess) -> str:
    return cp.output().split("control plane stopped", 1)[-1]


def _assert_interrupted_cleanly(cp: ControlPlaneProcess, proc: subprocess.Popen[bytes], children: list[int]) -> None:
    """^C to the control plane's process group: status 0, no stack trace from it or any child, no child left."""
    code = _group_interrupt(proc)
    output = _since_restart(cp)
    assert code == 0, output
    assert "Traceback" not in output, output
    assert not survivors(children, GONE_WITHIN)


def _end(proc: subprocess.Popen[bytes], children: list[int]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    kill_all(children)


def test_interrupt_from_a_terminal_stops_a_serving_control_plane_cleanly(tmp_path: Path) -> None:
    cp, proc = _session_control_plane(tmp_path)
    children: list[int] = []
    try:
        assert poll(lambda: "control plane listening" in _since_restart(cp), 30), cp.output()
        app = cp.create_app(name="svc", grant_types=["client_credentials"], tenant_id="tenant-a")
        cp.client_token(app)  # a signer has signed: it is past its start
        children = descendants(proc.pid)
        _assert_interrupted_cleanly(cp, proc, children)
    finally:
        _end(proc, children)


def test_interrupt_while_a_signer_starts_stops_the_control_plane_cleanly(tmp_path: Path) -> None:
    cp, proc = _session_control_plane(tmp_path)
    children: list[int] = []

    def signer_started() -> bool:
        children[:] = [p for p in descendants(proc.pid) if "controlplane.keys.signer" in cmdline(p)]
        return bool(children) or proc.poll() is not None

    try:
        assert poll(signer_started, 30, every=0.002), cp.output()
        time.sleep(0.05)  # its interpreter is up (it would die silently before), its imports under way
        _assert_interrupted_cleanly(cp, proc, children)
    finally:
        _end(proc, children)
