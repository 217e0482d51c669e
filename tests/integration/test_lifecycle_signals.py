"""SIGTERM while a service is still starting, and a second SIGTERM while it stops: the process ends promptly with
status 0 (a stop was asked for, nothing failed), however far its start had come."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlaneProcess
from tests.support.processes import ROOT
from tests.support.silent_server import SilentServer

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


@pytest.mark.xfail(
    strict=True,
    reason="PostgresDatabase.open creates its pool with asyncpg's default 60 s connect timeout and the stop event is "
    "only awaited once listening: SIGTERM while the database does not answer is ignored for a minute, then the "
    "process exits 2 with an empty reason ('cannot connect to PostgreSQL: ')",
)
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
