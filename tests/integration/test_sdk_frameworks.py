"""The SDK's framework integrations, each a real application on a real server (FastAPI under uvicorn, aiohttp,
Flask under werkzeug) in front of a real sidecar: the principal reaches the handler, refusals are RFC 6750
answers, an outage is 503 before the handler runs, and audit records appear (or the answer is refused)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import pytest
import pytest_asyncio
import uvicorn
from aiohttp import web
from fastapi import FastAPI, Request, Security
from flask import Flask, g
from flask import request as flask_request
from werkzeug.serving import make_server

from coresdk.audit.journal import Journal
from coresdk.client import AsyncClient, Client, ClientSettings, Principal
from coresdk.integrations import aiohttp as sdk_aiohttp
from coresdk.integrations import fastapi as sdk_fastapi
from coresdk.integrations import flask as sdk_flask
from coresdk.integrations.audit import Audit, SyncAudit
from coresdk.integrations.log_masking import MaskingFilter
from tests.support.jwks_server import JwksServer
from tests.support.ports import free_port
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import ISSUER, SigningKey, claims

CHAIN = "sdk-frameworks"
CONTACT = "jane.doe@example.com"
app_log = logging.getLogger("sdk-test-app")
VARIANTS = ["fastapi", "fastapi+middleware", "aiohttp", "aiohttp+middleware", "flask"]


def journal(proc: SidecarProcess) -> list[dict[str, Any]]:
    entries = Journal(Path(proc.env["CORESDK_DATA_DIR"]) / "audit", 1 << 30).read_all()
    return [json.loads(e.canonical) for e in entries if e.chain_id == CHAIN]


@pytest.fixture(scope="module")
def broken_audit(jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    """A sidecar whose audit journal is unusable (its directory is a file): tokens verify, records cannot be written."""
    blocked = tmp_path_factory.mktemp("blocked") / "not-a-directory"
    blocked.write_text("")
    proc = SidecarProcess(trusting(jwks.url, CORESDK_AUDIT_DIR=str(blocked)), wait_ready=False)
    deadline = time.monotonic() + 20
    checks: dict[str, Any] = {}
    while time.monotonic() < deadline and checks.get(ISSUER) is not True:
        with contextlib.suppress(OSError, ValueError):
            checks = json.loads(proc.health("/readyz")[1]).get("checks", {})
        time.sleep(0.1)
    assert checks == {ISSUER: True, "audit": False}, proc.output()
    yield proc
    proc.stop()


# --- the same application in each framework ---------------------------------------------------------------------


def fastapi_app(client: AsyncClient, calls: Counter[str], middleware: bool) -> FastAPI:
    app = FastAPI()
    sdk_fastapi.protect(app, client, public=["/healthz"] if middleware else None)
    audit = Audit(client, chain_id=CHAIN)

    @app.get("/healthz")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    async def orders(
        request: Request, principal: Annotated[Principal, Security(sdk_fastapi.require("orders:read"))]
    ) -> dict[str, Any]:
        calls["orders"] += 1
        app_log.warning("orders for %s (%s)", principal.claims.get("email"), request.headers["authorization"])
        return {"subject": principal.subject, "tenant": principal.tenant_id, "scopes": list(principal.scopes)}

    @app.post("/orders")
    @audit("order.create", resource="orders")
    async def create(principal: Annotated[Principal, Security(sdk_fastapi.require("orders:write"))]) -> dict[str, Any]:
        calls["create"] += 1
        return {"created": True}

    @app.post("/orders/{order_id}/purge")
    async def purge(
        order_id: str, request: Request, principal: Annotated[Principal, Security(sdk_fastapi.require())]
    ) -> dict[str, Any]:
        # a refusal inside an audited block is recorded as a denial, then answered
        token = request.headers["authorization"].split(" ", 1)[1]
        async with audit.record("order.purge", f"orders/{order_id}", metadata={"contact": CONTACT}):
            await client.require(token, "orders:delete")
        return {"purged": True}

    @app.get("/admin")
    async def admin(principal: Annotated[Principal, Security(sdk_fastapi.require("orders:delete"))]) -> dict[str, Any]:
        calls["admin"] += 1
        return {}

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        calls["me"] += 1
        return {"subject": sdk_fastapi.principal_of(request).subject}

    return app


def aiohttp_app(client: AsyncClient, calls: Counter[str], middleware: bool) -> web.Application:
    app = web.Application()
    sdk_aiohttp.setup(app, client, public=["/healthz"] if middleware else None)
    audit = Audit(client, chain_id=CHAIN)
    require = sdk_aiohttp.require

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @require("orders:read")
    async def orders(request: web.Request) -> web.Response:
        calls["orders"] += 1
        p = sdk_aiohttp.principal_of(request)
        app_log.warning("orders for %s (%s)", p.claims.get("email"), request.headers["Authorization"])
        return web.json_response({"subject": p.subject, "tenant": p.tenant_id, "scopes": list(p.scopes)})

    @require("orders:write")
    @audit("order.create", resource="orders")
    async def create(_: web.Request) -> web.Response:
        calls["create"] += 1
        return web.json_response({"created": True})

    @require("orders:delete")
    async def admin(_: web.Request) -> web.Response:
        calls["admin"] += 1
        return web.json_response({})

    async def me(request: web.Request) -> web.Response:
        calls["me"] += 1
        return web.json_response({"subject": sdk_aiohttp.principal_of(request).subject})

    app.router.add_get("/healthz", health)
    app.router.add_get("/orders", orders)
    app.router.add_post("/orders", create)
    app.router.add_get("/admin", admin)
    app.router.add_get("/me", me)
    return app


def flask_app(client: Client, calls: Counter[str]) -> Flask:
    app = Flask("sdk-test")
    sdk_flask.CoreSDK(app, client)
    audit = SyncAudit(client, chain_id=CHAIN)
    require = sdk_flask.require

    @app.get("/healthz")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/orders")
    @require("orders:read")
    def orders() -> dict[str, Any]:
        calls["orders"] += 1
        p = g.principal
        app_log.warning("orders for %s (%s)", p.claims.get("email"), flask_request.headers["Authorization"])
        return {"subject": p.subject, "tenant": p.tenant_id, "scopes": list(p.scopes)}

    @app.post("/orders")
    @require("orders:write")
    @audit("order.create", resource="orders")
    def create() -> dict[str, Any]:
        calls["create"] += 1
        return {"created": True}

    @app.get("/admin")
    @require("orders:delete")
    def admin() -> dict[str, Any]:
        calls["admin"] += 1
        return {}

    return app


# --- servers ------------------------------------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    calls: Counter[str]
    stop: Callable[[], Any]


async def serve_uvicorn(app: FastAPI) -> Served:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.02)

    async def stop() -> None:
        server.should_exit = True
        await task

    return Served(f"http://127.0.0.1:{port}", Counter(), stop)


async def serve_aiohttp(app: web.Application) -> Served:
    port = free_port()
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Served(f"http://127.0.0.1:{port}", Counter(), runner.cleanup)


def serve_flask(app: Flask) -> Served:
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    async def stop() -> None:
        server.shutdown()
        thread.join(10)

    return Served(f"http://127.0.0.1:{server.server_port}", Counter(), stop)


async def serve(variant: str, address: str) -> tuple[Served, Callable[[], Any]]:
    settings = ClientSettings(address=address, timeout_seconds=1.0)
    if variant == "flask":
        sync_client = Client(settings)
        calls: Counter[str] = Counter()
        served = serve_flask(flask_app(sync_client, calls))
        served.calls = calls

        async def close_sync() -> None:
            sync_client.close()

        return served, close_sync
    client = AsyncClient(settings)
    calls = Counter()
    middleware = variant.endswith("+middleware")
    if variant.startswith("fastapi"):
        served = await serve_uvicorn(fastapi_app(client, calls, middleware))
    else:
        served = await serve_aiohttp(aiohttp_app(client, calls, middleware))
    served.calls = calls
    return served, client.close


@dataclass
class Apps:
    variant: str
    ok: Served  # in front of the session's sidecar
    no_audit: Served  # in front of a sidecar whose journal is unusable
    down: Served  # in front of an address where nothing listens


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=VARIANTS)
async def apps(
    request: pytest.FixtureRequest, sidecar: SidecarProcess, broken_audit: SidecarProcess
) -> AsyncIterator[Apps]:
    variant = str(request.param)
    started = [
        await serve(variant, addr) for addr in (sidecar.target, broken_audit.target, f"[::1]:{free_port('::1')}")
    ]
    yield Apps(variant, *(s for s, _ in started))
    for served, close in started:
        await served.stop()
        await close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


def bearer(keys: dict[str, SigningKey], **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys['rs'].sign(claims(**kw))}"}


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, dict[str, Any], Any]:
    async with http.request(method, url, **kw) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


# --- the behaviour every integration must have -------------------------------------------------------------------


async def test_a_valid_token_gives_the_handler_its_principal(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    status, _, body = await call(http, "GET", f"{apps.ok.url}/orders", headers=bearer(keys))
    assert status == 200, body
    assert body == {"subject": "user-42", "tenant": "tenant-a", "scopes": ["orders:read", "orders:write"]}
    assert apps.ok.calls["orders"] >= 1


@pytest.mark.parametrize(
    ("case", "expected_reason"),
    [("missing", None), ("expired", "TOKEN_EXPIRED"), ("audience", "AUDIENCE_MISMATCH"), ("garbled", "MALFORMED")],
)
async def test_no_usable_token_is_401_with_the_rfc6750_challenge(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey], case: str, expected_reason: str | None
) -> None:
    now = int(time.time())
    headers = {
        "missing": {},
        "expired": bearer(keys, iat=now - 900, exp=now - 300),
        "audience": bearer(keys, aud="api://somebody-else"),
        "garbled": {"Authorization": "Bearer not a token"},
    }[case]
    before = apps.ok.calls["orders"]
    status, resp_headers, body = await call(http, "GET", f"{apps.ok.url}/orders", headers=headers)
    assert status == 401
    assert body["error"] == "invalid_token"
    challenge = resp_headers["WWW-Authenticate"]
    if expected_reason is None:
        assert challenge == 'Bearer realm="coresdk"'  # RFC 6750 §3.1: no error code when no credentials were sent
    else:
        assert challenge.startswith('Bearer realm="coresdk", error="invalid_token"')
        assert expected_reason in challenge and expected_reason in body["error_description"]
    assert apps.ok.calls["orders"] == before


async def test_a_missing_scope_is_403_insufficient_scope(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    status, headers, body = await call(http, "GET", f"{apps.ok.url}/admin", headers=bearer(keys))
    assert status == 403
    assert body == {"error": "insufficient_scope", "error_description": "not allowed (SCOPE_MISSING)"}
    assert headers["WWW-Authenticate"] == 'Bearer realm="coresdk", error="insufficient_scope", scope="orders:delete"'
    assert apps.ok.calls["admin"] == 0


async def test_sidecar_down_is_503_and_the_handler_never_runs(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    for method, path in (("GET", "/orders"), ("POST", "/orders"), ("GET", "/admin")):
        status, headers, body = await call(http, method, f"{apps.down.url}{path}", headers=bearer(keys))
        assert status == 503, (method, path, body)
        assert body["error"] == "temporarily_unavailable" and "SIDECAR_UNAVAILABLE" in body["error_description"]
        assert headers["Retry-After"] == "5"
    assert sum(apps.down.calls.values()) == 0


async def test_each_audited_request_leaves_one_record_with_outcome_and_principal(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey], sidecar: SidecarProcess
) -> None:
    subject = f"writer-{apps.variant}"
    before = len(journal(sidecar))
    status, _, body = await call(http, "POST", f"{apps.ok.url}/orders", headers=bearer(keys, sub=subject))
    assert (status, body) == (200, {"created": True})
    (record,) = journal(sidecar)[before:]
    assert (record["action"], record["resource"], record["outcome"]) == ("order.create", "orders", "success")
    assert (record["actor"], record["tenant_id"], record["metadata"]["client_id"]) == (subject, "tenant-a", "client-1")


async def test_an_answer_whose_audit_record_cannot_be_written_is_refused(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    status, _, body = await call(http, "GET", f"{apps.no_audit.url}/orders", headers=bearer(keys))
    assert status == 200, body  # the sidecar answers; only its journal is broken
    status, headers, body = await call(http, "POST", f"{apps.no_audit.url}/orders", headers=bearer(keys))
    assert status == 503
    assert body["error"] == "temporarily_unavailable" and "AUDIT_UNAVAILABLE" in body["error_description"]
    assert headers["Retry-After"] == "5"


@pytest.mark.variants("fastapi+middleware", "aiohttp+middleware")
async def test_the_middleware_authenticates_every_route_but_the_public_ones(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    assert (await call(http, "GET", f"{apps.ok.url}/healthz"))[0] == 200
    for path in ("/me", "/healthz/", "/no-such-route"):
        status, headers, _ = await call(http, "GET", f"{apps.ok.url}{path}")
        assert (status, headers["WWW-Authenticate"]) == (401, 'Bearer realm="coresdk"'), path
    assert apps.ok.calls["me"] == 0
    status, _, body = await call(http, "GET", f"{apps.ok.url}/me", headers=bearer(keys, sub="mw-user"))
    assert (status, body) == (200, {"subject": "mw-user"})
    two = {"Authorization": [bearer(keys)["Authorization"]] * 2}
    headers_list = [("Authorization", v) for v in two["Authorization"]]
    assert (await call(http, "GET", f"{apps.ok.url}/me", headers=headers_list))[0] == 401


@pytest.mark.variants("fastapi")  # one framework is enough: the block is framework-neutral
async def test_a_refusal_inside_an_audited_block_is_recorded_as_a_denial(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey], sidecar: SidecarProcess
) -> None:
    before = len(journal(sidecar))
    status, _, body = await call(http, "POST", f"{apps.ok.url}/orders/7/purge", headers=bearer(keys, sub="purger"))
    assert (status, body["error"]) == (403, "insufficient_scope")
    (record,) = journal(sidecar)[before:]
    assert (record["action"], record["resource"], record["outcome"], record["reason"]) == (
        "order.purge",
        "orders/7",
        "deny",
        "SCOPE_MISSING",
    )
    assert record["actor"] == "purger"
    assert CONTACT not in json.dumps(record)  # metadata masked by the sidecar before hashing


async def test_the_logging_filter_leaves_no_email_or_token_in_the_applications_logs(
    apps: Apps, http: aiohttp.ClientSession, keys: dict[str, SigningKey]
) -> None:
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.addFilter(MaskingFilter())
    app_log.addHandler(handler)
    try:
        headers = bearer(keys, email=CONTACT)
        status, _, _ = await call(http, "GET", f"{apps.ok.url}/orders", headers=headers)
    finally:
        app_log.removeHandler(handler)
    assert status == 200
    text = captured.getvalue()
    assert text.startswith("orders for ")  # the line was written, masked
    assert CONTACT not in text and headers["Authorization"].split()[1] not in text
