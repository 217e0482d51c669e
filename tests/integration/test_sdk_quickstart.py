"""The quickstart of docs/sdk.md, as written: the file under uvicorn, next to `coresdk dev`, with a token from
`coresdk dev-token`. If the doc and the SDK drift apart, this fails."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.devsystem import start_dev
from tests.support.ports import free_port
from tests.support.processes import ROOT

BIN = Path(sys.executable).parent


EXAMPLE = ROOT / "examples" / "fastapi_quickstart.py"


def quickstart() -> str:
    """examples/fastapi_quickstart.py, which the README, the developer guide and docs/sdk.md show verbatim."""
    code = EXAMPLE.read_text()
    assert len(code.strip().splitlines()) < 15, "the quickstart promises a protected app in under 15 lines"
    for doc in (ROOT / "README.md", ROOT / "docs" / "developer-guide.md", ROOT / "docs" / "sdk.md"):
        shown = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
        assert code in shown, f"{doc.name} must show examples/fastapi_quickstart.py as it is"
    return code


def get(url: str, token: str = "") -> tuple[int, dict[str, str], dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read())


@pytest.fixture(scope="module")
def dev_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("dev")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "CORESDK_DATA_DIR": str(tmp / "data"),
            "CORESDK_CP_ADDR": f"127.0.0.1:{free_port()}",
            "CORESDK_SIDECAR_ADDR": f"[::1]:{free_port('::1')}",
            "CORESDK_HEALTH_ADDR": f"127.0.0.1:{free_port()}",
            "CORESDK_DEV_VAULT_ADDR": f"127.0.0.1:{free_port()}",
            "CORESDK_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
            "CORESDK_DEMO_UPSTREAM_ADDR": f"127.0.0.1:{free_port()}",
            "CORESDK_DEV_MCP_ADDR": f"127.0.0.1:{free_port()}",
        }
    )
    proc = start_dev(env, Path(env["CORESDK_DATA_DIR"]), tmp / "dev.out")
    try:
        yield env
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_the_quickstart_runs_as_written_against_coresdk_dev(dev_system: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "quickstart.py").write_text(quickstart())
    port = free_port()
    log = tmp_path / "uvicorn.out"
    with open(log, "wb") as out:
        app = subprocess.Popen(
            [str(BIN / "uvicorn"), "quickstart:app", "--port", str(port)],
            cwd=tmp_path,
            env={**dev_system, "PYTHONPATH": f"{tmp_path}:{ROOT}"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}/orders"
        deadline = time.monotonic() + 30
        while "Application startup complete" not in log.read_text() and time.monotonic() < deadline:
            assert app.poll() is None, log.read_text()
            time.sleep(0.1)
        token = subprocess.run(
            [str(BIN / "coresdk"), "dev-token", "--scope", "orders:read"],
            env=dev_system,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status, _, body = get(url, token)
        assert status == 200, (body, log.read_text())
        assert body["tenant"] == "tenant-demo" and body["user"]
        status, headers, body = get(url)
        assert (status, headers["www-authenticate"], body["error"]) == (401, 'Bearer realm="coresdk"', "invalid_token")
    finally:
        app.terminate()
        app.wait(10)
