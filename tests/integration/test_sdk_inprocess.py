"""The SDK with the engine in process (no sidecar hop): the same FastAPI integration on a real uvicorn server, the
same typed refusals, and an fsynced audit journal of the application's own, as with the sidecar client."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Security

from coresdk.audit.journal import Journal
from coresdk.client import Principal
from coresdk.client.inprocess import InProcessClient
from coresdk.integrations import fastapi as sdk_fastapi
from coresdk.integrations.audit import Audit
from tests.support.jwks_server import JwksServer
from tests.support.ports import free_port
from tests.support.processes import trusting
from tests.support.tokens import SigningKey, claims

CHAIN = "app-inprocess"


def app_for(client: InProcessClient, handled: list[str]) -> FastAPI:
    app = FastAPI()
    sdk_fastapi.protect(app, client)
    audit = Audit(client, chain_id=CHAIN)

    @app.get("/orders")
    async def orders(principal: Annotated[Principal, Security(sdk_fastapi.require("orders:read"))]) -> dict[str, Any]:
        handled.append("orders")
        return {"subject": principal.subject, "tenant": principal.tenant_id}

    @app.post("/orders")
    @audit("order.create", resource="orders")
    async def create(principal: Annotated[Principal, Security(sdk_fastapi.require("orders:write"))]) -> dict[str, Any]:
        handled.append("create")
        return {"created": True}

    return app


@pytest_asyncio.fixture(loop_scope="session")
async def served(jwks: JwksServer) -> AsyncIterator[tuple[str, InProcessClient, list[str]]]:
    data = Path(tempfile.mkdtemp(prefix="coresdk-inprocess-"))
    client = InProcessClient.from_env(
        trusting(jwks.url, CORESDK_DATA_DIR=str(data), CORESDK_AUDIT_CHAIN=CHAIN, CORESDK_ENV="production")
    )
    handled: list[str] = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app_for(client, handled), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}", client, handled
    server.should_exit = True
    await task
    await client.close()


async def call(method: str, url: str, token: str = "") -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_the_engine_in_process_protects_routes_like_the_sidecar(
    served: tuple[str, InProcessClient, list[str]], keys: dict[str, SigningKey]
) -> None:
    url, client, handled = served
    status, _, body = await call("GET", f"{url}/orders", keys["rs"].sign(claims(sub="in-proc")))
    assert (status, body) == (200, {"subject": "in-proc", "tenant": "tenant-a"})
    status, headers, body = await call("GET", f"{url}/orders", keys["rs"].sign(claims(exp=1, iat=0)))
    assert status == 401 and "invalid_token" in headers["WWW-Authenticate"]
    status, _, body = await call("GET", f"{url}/orders", keys["rs"].sign(claims(scope="other:read")))
    assert (status, body["error"]) == (403, "insufficient_scope")
    assert handled == ["orders"]
    status, _, _ = await call("POST", f"{url}/orders", keys["rs"].sign(claims(sub="writer")))
    assert status == 200 and handled[-1] == "create"
    entries = Journal(client.engine.config.audit.directory, 1 << 30).read_all()
    records = [json.loads(e.canonical) for e in entries if e.chain_id == CHAIN]
    assert records[-1]["action"] == "order.create" and records[-1]["actor"] == "writer"


async def test_keys_unavailable_is_503_and_the_handler_never_runs(keys: dict[str, SigningKey]) -> None:
    data = Path(tempfile.mkdtemp(prefix="coresdk-inprocess-"))
    nowhere = f"http://127.0.0.1:{free_port()}/jwks"
    client = InProcessClient.from_env(trusting(nowhere, CORESDK_DATA_DIR=str(data), CORESDK_ENV="production"))
    handled: list[str] = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app_for(client, handled), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        status, headers, body = await call("GET", f"http://127.0.0.1:{port}/orders", keys["rs"].sign(claims()))
        assert status == 503 and body["error"] == "temporarily_unavailable" and handled == []
    finally:
        server.should_exit = True
        await task
        await client.close()
