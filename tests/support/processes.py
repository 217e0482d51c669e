"""Start real CoreSDK processes for tests and wait until they are ready."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.ports import free_port
from tests.support.tokens import AUDIENCE, ISSUER

ROOT = Path(__file__).resolve().parents[2]


def trusting(jwks_url: str, **extra: str) -> dict[str, str]:
    """Settings of a sidecar that trusts the test issuer (tests/support/tokens.py) through the JWKS at jwks_url."""
    return {
        "CORESDK_JWKS_URI": jwks_url,
        "CORESDK_EXPECTED_ISSUER": ISSUER,
        "CORESDK_EXPECTED_AUDIENCE": AUDIENCE,
        **extra,
    }


class SidecarProcess:
    def __init__(self, env: dict[str, str], wait_ready: bool = True, grpc_host: str = "[::1]") -> None:
        self.grpc_port = free_port("::1") if grpc_host == "[::1]" else free_port()
        self.health_port = free_port()
        self.addr = f"{grpc_host}:{self.grpc_port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
        full_env.update(
            {
                "CORESDK_SIDECAR_ADDR": self.addr,
                "CORESDK_HEALTH_ADDR": f"127.0.0.1:{self.health_port}",
                "CORESDK_DATA_DIR": tempfile.mkdtemp(prefix="coresdk-sidecar-"),
                "CORESDK_AUDIT_CHAIN": "test-chain",
                "PYTHONPATH": str(ROOT),
            }
        )
        full_env.update(env)
        self.env = full_env
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sidecar-{self.grpc_port}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.start(wait_ready)

    def start(self, wait_ready: bool = True) -> None:
        if self._log.closed:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar"], env=self.env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )
        if wait_ready:
            self.wait_ready()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.proc.kill()
        self.proc.wait(10)

    @property
    def target(self) -> str:
        return self.addr

    def health(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if self.health("/readyz")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        self.proc.kill()  # never left running after the test, as the control plane's and gateway's helpers do
        self.proc.wait()
        raise RuntimeError(f"sidecar not ready in {timeout}s:\n{self.output()}")

    def readiness_checks(self, until: str, timeout: float = 20.0) -> dict[str, object]:
        """The /readyz checks once check `until` is true (for a sidecar that is meant never to become ready)."""
        deadline = time.monotonic() + timeout
        checks: dict[str, object] = {}
        while time.monotonic() < deadline and checks.get(until) is not True:
            with contextlib.suppress(OSError, ValueError):
                checks = json.loads(self.health("/readyz")[1]).get("checks", {})
            time.sleep(0.1)
        return checks

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def run_sidecar_expecting_exit(env: dict[str, str], timeout: float = 20.0) -> tuple[int, str]:
    """Run a sidecar that should refuse to start; return (exit code, output)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
    full_env.update(
        {
            "PYTHONPATH": str(ROOT),
            "CORESDK_HEALTH_ADDR": f"127.0.0.1:{free_port()}",
            "CORESDK_DATA_DIR": tempfile.mkdtemp(prefix="coresdk-sidecar-"),
        }
    )
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "sidecar"], env=full_env, cwd=ROOT, capture_output=True, timeout=timeout, check=False
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")
