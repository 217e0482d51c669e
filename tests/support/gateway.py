"""Processes for gateway tests: an upstream application that records what reached it, and the gateway itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
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


class GatewayProcess:
    def __init__(
        self,
        upstream: HasPort,
        sidecar_addr: str,
        cp_url: str = "",
        port: int = 0,
        routes_file: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_")}
        full_env.update(
            {
                "PYTHONPATH": str(ROOT),
                "CORESDK_GATEWAY_ADDR": f"127.0.0.1:{self.port}",
                "CORESDK_UPSTREAM_URL": f"http://127.0.0.1:{upstream.port}",
                "CORESDK_SIDECAR_ADDR": sidecar_addr,
                "CORESDK_ROUTES_FILE": str(routes_file or ROOT / "config" / "routes.json"),
                "CORESDK_GATEWAY_MAX_BODY": "65536",
            }
        )
        if cp_url:
            full_env["CORESDK_CP_URL"] = cp_url
        full_env.update(env or {})
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gateway-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway"], env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                break
        raise RuntimeError(f"gateway did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
