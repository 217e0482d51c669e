"""A real JWKS HTTP server on loopback, running in its own thread, whose keys and availability tests control."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from tests.support.ports import free_port


class JwksServer:
    def __init__(self, max_age: int = 300) -> None:
        self.port = free_port()
        self.max_age = max_age
        self.keys: list[dict[str, Any]] = []
        self.requests = 0
        self.status = 200
        self._down = False
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._setup())
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _handler(self, _: web.Request) -> web.Response:
        if self._down:
            raise ConnectionResetError("down")
        self.requests += 1
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        return web.Response(
            text=json.dumps({"keys": self.keys}),
            content_type="application/json",
            headers={"Cache-Control": f"public, max-age={self.max_age}"},
        )

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_get("/jwks.json", self._handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()

    async def _start_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _stop_site(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    def up(self) -> None:
        """Listen (again) on the same port."""
        self._down = False
        self._call(self._start_site())

    def down(self) -> None:
        """Stop listening: new connections are refused and kept-alive ones get no keys, as when the IdP is gone."""
        self._down = True
        self._call(self._stop_site())

    def close(self) -> None:
        self._call(self._stop_site())
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
