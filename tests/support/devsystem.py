"""Start `coresdk dev` (the whole development system) in its own process group and wait until it serves."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import ROOT

READY = "Press Ctrl-C to stop."


def dev_env(**extra: str) -> dict[str, str]:
    """The environment of a `coresdk dev` that takes free loopback ports for every service (tests run beside each
    other and beside a developer's own system), no CORESDK_* setting inherited; extra settings on top."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(
        CORESDK_CP_ADDR=f"127.0.0.1:{free_port()}",
        CORESDK_SIDECAR_ADDR=f"[::1]:{free_port('::1')}",
        CORESDK_HEALTH_ADDR=f"127.0.0.1:{free_port()}",
        CORESDK_DEV_VAULT_ADDR=f"127.0.0.1:{free_port()}",
        CORESDK_GATEWAY_ADDR=f"127.0.0.1:{free_port()}",
        CORESDK_DEMO_UPSTREAM_ADDR=f"127.0.0.1:{free_port()}",
        CORESDK_DEV_MCP_ADDR=f"127.0.0.1:{free_port()}",
    )
    env.update(extra)
    return env


def start_dev(env: dict[str, str], data_dir: Path, log: Path, timeout: float = 90) -> subprocess.Popen[bytes]:
    """Ctrl-C is signalled to the group (os.killpg(proc.pid, SIGINT)), as a terminal would."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "coresdk"), "dev", "--data-dir", str(data_dir)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while READY not in log.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    assert READY in log.read_text(), log.read_text()
    return proc
