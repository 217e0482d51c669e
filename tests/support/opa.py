"""A stand-in for an OPA server's data API (no OPA binary exists on these machines), evaluating real Rego with
regorus behind the same HTTP contract: POST /v1/data/{path} {"input": ...} → {"result": ...}, the result key
absent when the document is undefined. `mode` lets a test make it fail (500) or hang past the client's timeout.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import regorus
from aiohttp import web

from tests.support.ports import free_port


class OpaServer:
    def __init__(self, policies: list[Path], data: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "ok"  # ok | error | hang
        self.queries = 0
        self._policies, self._data_file = policies, data
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _data(self, request: web.Request) -> web.Response:
        self.queries += 1
        if self.mode == "error":
            return web.json_response({"code": "internal_error", "message": "boom"}, status=500)
        if self.mode == "hang":
            await asyncio.sleep(1.5)
        body = await request.json()
        engine = self._engine
        engine.set_input_json(json.dumps(body.get("input", {})))
        rule = "data." + request.match_info["path"].strip("/").replace("/", ".")
        try:
            rows = json.loads(engine.eval_query_as_json(rule)).get("result") or []
        except RuntimeError as exc:
            return web.json_response({"code": "internal_error", "message": str(exc)[:200]}, status=500)
        if not rows:
            return web.json_response({})
        return web.json_response({"result": rows[0]["expressions"][0]["value"]})

    async def _start(self) -> None:
        # regorus engines are bound to the thread that made them: build it on the server's own thread.
        self._engine = regorus.Engine()
        for p in self._policies:
            self._engine.add_policy(str(p), p.read_text())
        if self._data_file is not None:
            self._engine.add_data_json(self._data_file.read_text())
        app = web.Application()
        app.router.add_post("/v1/data/{path:.*}", self._data)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self._runner.cleanup()
        del self._engine  # dropped on the thread that owns it

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
