"""Start-ups that fail once resources are open end the process: exit status 2, one line naming the variable, no
stack trace, nothing left behind (tests/integration/test_start_up_failures.py covers taken addresses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlaneProcess
from tests.support.gateway import GatewayProcess, Upstream
from tests.support.jwks_server import JwksServer
from tests.support.lifecycle import assert_start_refused, descendants, kill_all, poll, run_to_exit, survivors
from tests.support.postgres import PostgresCluster, _bin
from tests.support.processes import ROOT, SidecarProcess, trusting
from tests.support.tokens import SigningKey

EXIT_WITHIN = 20.0  # a failed start takes a second or two; a hung one never ends


class _Unstarted(ControlPlaneProcess):
    """A control plane's settings (production, a signing key) without starting it."""

    def start(self) -> None:
        pass


def _run(module: str, env: dict[str, str]) -> tuple[int | None, str]:
    return run_to_exit(module, env, EXIT_WITHIN)


def test_a_file_that_is_not_a_database_is_refused_and_the_control_plane_exits(tmp_path: Path) -> None:
    not_a_database = tmp_path / "cp.db"
    not_a_database.write_bytes(b"this is not a SQLite database\n" * 400)
    settings = _Unstarted(tmp_path / "cp", f"sqlite:///{not_a_database}")
    assert_start_refused(*_run("controlplane", settings.env), "DATABASE_URL")


def test_a_database_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    settings = _Unstarted(tmp_path / "cp", f"sqlite:///{tmp_path / 'a-file' / 'cp.db'}")
    assert_start_refused(*_run("controlplane", settings.env), "DATABASE_URL")


def test_a_database_role_without_privileges_is_refused(postgres: PostgresCluster, tmp_path: Path) -> None:
    if postgres.external:
        pytest.skip("needs the private cluster (creates a role)")
    url = postgres.new_database()
    role = f"nopriv_{os.getpid()}"
    psql = [_bin("psql"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres"]
    postgres._run([*psql, "-c", f"CREATE ROLE {role} LOGIN"])
    settings = _Unstarted(tmp_path / "cp", url.replace("postgres@", f"{role}@"))
    assert_start_refused(*_run("controlplane", settings.env), "DATABASE_URL")


def test_a_gateway_that_cannot_listen_stops_its_engine(tmp_path: Path) -> None:
    jwks = JwksServer()
    jwks.keys = [SigningKey.rsa("life-gw").jwk()]
    upstream = Upstream()
    first = GatewayProcess(upstream, trusting(jwks.url))
    try:
        env = {**first.env, "CORESDK_DATA_DIR": str(tmp_path / "data"), "CORESDK_AUTH_WORKERS": "2"}
        os.makedirs(env["CORESDK_DATA_DIR"])
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        seen: list[int] = []

        def ended() -> bool:
            seen.extend(p for p in descendants(proc.pid) if p not in seen)
            return proc.poll() is not None

        poll(ended, EXIT_WITHIN, every=0.02)
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        output = proc.stdout.read().decode(errors="replace")
        proc.wait()
        left = survivors(seen, 5)
        kill_all(left)
        assert_start_refused(proc.returncode, output, "CORESDK_GATEWAY_ADDR")
        assert not left
        assert "Unclosed" not in output, output
    finally:
        first.stop()
        jwks.close()


def test_a_second_sidecar_on_a_journal_in_use_is_refused(tmp_path: Path) -> None:
    jwks = JwksServer()
    jwks.keys = [SigningKey.rsa("life-twin").jwk()]
    first = SidecarProcess(trusting(jwks.url))
    try:
        # its own addresses (SidecarProcess picks free ones), the first one's data directory
        second = SidecarProcess(trusting(jwks.url, CORESDK_DATA_DIR=first.env["CORESDK_DATA_DIR"]), wait_ready=False)
        try:
            # it should exit at once; one that becomes ready is appending to the same journal as the first
            poll(lambda: second.proc.poll() is not None or second.readiness_checks("audit", 1).get("audit") is True, 20)
            code = second.proc.poll()
            assert_start_refused(code, second.output(), "CORESDK_DATA_DIR")
        finally:
            second.stop()
    finally:
        assert first.stop() == 0, first.output()
        jwks.close()
