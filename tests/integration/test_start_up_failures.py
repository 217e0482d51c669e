"""A start that fails late still ends the process: exit status 2, one line naming the variable, no stack trace.

Some configuration errors only show once resources are open: an address already taken, an initial signing key of
the wrong kind. Before, the control plane printed the error but its open SQLite connection (a thread) kept the
process alive forever, listening on nothing. A supervisor then sees a running service that will never serve. Each
case starts a second copy of a running service, as an operator who starts it twice would, and waits for it to exit.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from tests.support.controlplane import ControlPlaneProcess
from tests.support.gateway import GatewayProcess, Upstream
from tests.support.lifecycle import assert_start_refused, run_to_exit
from tests.support.ports import free_port
from tests.support.processes import SidecarProcess

EXIT_WITHIN = 30  # seconds: a failed start takes well under this; a hung one never ends


def test_a_second_control_plane_on_a_taken_address_exits(cp: ControlPlaneProcess, tmp_path: Path) -> None:
    """Same store, same settings, the first one's address: the second opens the store, then cannot listen."""
    code, output = run_to_exit("controlplane", dict(cp.env), EXIT_WITHIN)
    assert_start_refused(code, output, "CORESDK_CP_ADDR")
    assert requests.get(f"{cp.url}/api/v1/jwks", timeout=10).status_code == 200  # the first one serves on


@pytest.mark.parametrize("taken", ["CORESDK_SIDECAR_ADDR", "CORESDK_HEALTH_ADDR"])
def test_a_second_sidecar_on_a_taken_address_exits(sidecar: SidecarProcess, taken: str, tmp_path: Path) -> None:
    env = dict(sidecar.env)
    env["CORESDK_DATA_DIR"] = str(tmp_path / "data")  # its own journal: only the address is shared
    if taken == "CORESDK_SIDECAR_ADDR":
        env["CORESDK_HEALTH_ADDR"] = f"127.0.0.1:{free_port()}"
    else:
        env["CORESDK_SIDECAR_ADDR"] = f"[::1]:{free_port('::1')}"
    code, output = run_to_exit("sidecar", env, EXIT_WITHIN)
    assert_start_refused(code, output, taken)
    assert sidecar.health("/healthz")[0] == 200


def test_a_second_gateway_on_a_taken_address_exits(sidecar: SidecarProcess, tmp_path: Path) -> None:
    upstream = Upstream()
    first = GatewayProcess(upstream, sidecar)
    try:
        env = {**first.env, "CORESDK_DATA_DIR": str(tmp_path / "data")}
        os.makedirs(env["CORESDK_DATA_DIR"])
        code, output = run_to_exit("gateway", env, EXIT_WITHIN)
        assert_start_refused(code, output, "CORESDK_GATEWAY_ADDR")
    finally:
        first.stop()
