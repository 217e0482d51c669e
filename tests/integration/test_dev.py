"""`coresdk dev` (the README's run command) and the development control plane it starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.devsystem import dev_env, start_dev
from tests.support.processes import ROOT


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def test_dev_starts_everything_serves_a_token_and_stops(tmp_path: Path) -> None:
    env = dev_env()
    coresdk = str(Path(sys.executable).parent / "coresdk")
    result = subprocess.run(
        [coresdk, "dev", "--check", "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-check: PASS" in result.stdout
    assert "secret from Vault through the sidecar: ok" in result.stdout
    assert "gateway → app with identity from the token: ok" in result.stdout
    assert "gateway audit shipped with the gateway's own enrolled credential: ok" in result.stdout
    gateway_credential = (tmp_path / "data" / "gateway-credential").read_text()
    assert (
        gateway_credential.startswith("sc_")
        and gateway_credential != (tmp_path / "data" / "sidecar-credential").read_text()
    )
    credential = (tmp_path / "data" / "sidecar-credential").read_text()
    assert credential.startswith("sc_") and credential != (tmp_path / "data" / "sidecar-token").read_text()
    assert "doctor: FAIL audit.offbox, env.production (as expected in development)" in result.stdout
    assert "stopped." in result.stdout
    key = tmp_path / "data" / "signing-key.pem"
    assert key.stat().st_mode & 0o077 == 0, "the generated signing key must be private to its owner"


def test_controlplane_refuses_production_without_signing_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controlplane"],
        env=_env(CORESDK_ISSUER="https://cp.example"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert "CORESDK_SIGNING_KEY_PATH" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_every_process_cleanly(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: every service stops and frees its port."""
    import signal

    env = dev_env()
    ports = [int(v.rsplit(":", 1)[1]) for k, v in env.items() if k.startswith("CORESDK_") and k.endswith("_ADDR")]
    log = tmp_path / "dev.out"
    proc = start_dev(env, tmp_path / "data", log)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert "stopping ..." in text and "stopped." in text and "killing it" not in text
    assert "Traceback" not in text
    from coresdk.doctor.network import listeners

    for port in ports:
        assert listeners(port) == [], f"something still listens on {port}"
