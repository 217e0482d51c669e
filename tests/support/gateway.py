"""Processes for gateway tests: an upstream application that records what reached it, and the gateway itself."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import requests
from aiohttp import web

from tests.support.ports import free_port
from tests.support.processes import ROOT


class Upstream:
    """An application behind the gateway that echoes what reached it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def echo(request: web.Request) -> web.Response:
            body = await request.read()
            self.seen.append(
                {
                    "path": request.path,
                    "raw_path": request.raw_path,
                    "headers": dict(request.headers),
                    "header_items": list(request.headers.items()),
                    "body": body.decode(errors="replace"),
                    "body_bytes": len(body),
                }
            )
            return web.json_response({"ok": True, "path": request.path, "raw_path": request.raw_path})

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", echo)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)


class HasPort(Protocol):
    port: int


class HasEnv(Protocol):
    env: dict[str, str]


# The engine's settings a sidecar and the gateway share (coresdk/config/engine.py): whom to trust, the token policy,
# revocations and audit shipping, custom rules, which decisions are audited. Never a sidecar's own addresses,
# journal or Vault settings: the gateway keeps its own.
ENGINE_VARIABLES = (
    "CORESDK_ENV",
    "CORESDK_JWKS_",
    "CORESDK_EXPECTED_",
    "CORESDK_ISSUERS_FILE",
    "CORESDK_MAX_TOKEN_",
    "CORESDK_CLOCK_LEEWAY",
    "CORESDK_REQUIRE_AT_JWT_TYP",
    "CORESDK_CP_URL",
    "CORESDK_CP_TOKEN",
    "CORESDK_REVOCATION_",
    "CORESDK_POLICY_",
    "OPA_URL",
    "CORESDK_AUDIT_DECISIONS",
    "CORESDK_ADMIN_TENANT_BYPASS",
    "CORESDK_AUTH_CACHE_SIZE",
    "CORESDK_MASKING_HMAC_KEY",
)


def engine_env(trust: HasEnv | dict[str, str]) -> dict[str, str]:
    """The engine settings of a sidecar (or a plain mapping of them) for a gateway that trusts the same issuers."""
    source = trust.env if hasattr(trust, "env") else trust
    assert isinstance(source, dict)
    return {k: v for k, v in source.items() if k.startswith(ENGINE_VARIABLES)}


def empty_manifest_trust(directory: Path) -> dict[str, str]:
    """A trust file with a fresh key and no manifests: MCP routes start, and every tool call is refused."""
    from nacl.signing import SigningKey

    from coresdk.mcp.manifest import encode_public_key

    trust = directory / "manifest-trust.json"
    trust.write_text(json.dumps({"keys": [encode_public_key(SigningKey.generate().verify_key)], "revoked": []}))
    manifests = directory / "manifests"
    manifests.mkdir(exist_ok=True)
    return {"CORESDK_MANIFEST_KEYS": str(trust), "CORESDK_MANIFEST_DIR": str(manifests)}


class GatewayProcess:
    """A real gateway process. `trust` gives its engine settings: a SidecarProcess to trust what it trusts (the
    gateway decides in process; it does not call the sidecar), or a mapping such as tests.support.processes.trusting."""

    def __init__(
        self,
        upstream: HasPort,
        trust: HasEnv | dict[str, str],
        cp_url: str = "",
        port: int = 0,
        routes_file: Path | None = None,
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
        full_env.update(
            {
                "PYTHONPATH": str(ROOT),
                "CORESDK_GATEWAY_ADDR": f"127.0.0.1:{self.port}",
                "CORESDK_UPSTREAM_URL": f"http://127.0.0.1:{upstream.port}",
                "CORESDK_DATA_DIR": tempfile.mkdtemp(prefix="coresdk-gateway-"),
                "CORESDK_GATEWAY_AUDIT_CHAIN": f"test-gateway-{self.port}",
                "CORESDK_ROUTES_FILE": str(routes_file or ROOT / "config" / "routes.json"),
                "CORESDK_GATEWAY_MAX_BODY": "65536",
                **engine_env(trust),
            }
        )
        if cp_url:
            full_env["CORESDK_CP_URL"] = cp_url
        full_env.update(env or {})
        if "CORESDK_MANIFEST_KEYS" not in full_env:  # the example map has an MCP route: no tool is approved here
            full_env.update(empty_manifest_trust(Path(full_env["CORESDK_DATA_DIR"])))
        self.env = full_env
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gateway-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway"], env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        # ready: the engine holds every issuer's keys, the revocation feed and its journal (else only alive)
        probe = f"{self.url}/readyz" if wait_ready else f"{self.url}/healthz"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(probe, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.proc.kill()  # never left running after the test
        self.proc.wait()
        raise RuntimeError(f"gateway did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
