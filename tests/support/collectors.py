"""Real off-box receivers for audit sinks: a TCP syslog collector and a Splunk-HEC-style HTTP collector."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from tests.support.ports import free_port


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class SyslogCollector(_LoopThread):
    """RFC 6587 octet-counted RFC 5424 messages over TCP."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.messages: list[str] = []
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self.up()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while True:
                length = await reader.readuntil(b" ")
                self.messages.append((await reader.readexactly(int(length))).decode())
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            writer.close()

    def up(self) -> None:
        async def start() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

        self.call(start())

    def down(self) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for client in list(self._clients):
                client.close()
            self._clients.clear()
            await self._server.wait_closed()

        self.call(stop())


class HecCollector(_LoopThread):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.port = free_port()
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.failing = False
        self.rejected = 0

        async def handler(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Splunk {self.token}":
                return web.json_response({"text": "Invalid token", "code": 4}, status=403)
            if self.failing:
                self.rejected += 1
                return web.json_response({"text": "Server is busy", "code": 9}, status=503)
            decoder = json.JSONDecoder()
            text, pos = await request.text(), 0
            while pos < len(text):
                event, pos = decoder.raw_decode(text, pos)
                self.events.append(event)
            return web.json_response({"text": "Success", "code": 0})

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/services/collector/event", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        self.call(start())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
