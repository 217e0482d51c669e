"""The gateway in front of a real upstream, authenticating and authorizing in process with the engine, trusting
what the test sidecar trusts."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.gateway import GatewayProcess, Upstream
from tests.support.ports import free_port
from tests.support.processes import ROOT, SidecarProcess, trusting
from tests.support.tokens import SigningKey, claims


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture(scope="module")
def gateway(upstream: Upstream, sidecar: SidecarProcess) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(upstream, sidecar)
    yield gw
    gw.stop()


def bearer(keys: dict[str, SigningKey], **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys['rs'].sign(claims(**kw))}"}


def test_identity_headers_come_from_the_token_only(
    gateway: GatewayProcess, upstream: Upstream, keys: dict[str, SigningKey]
) -> None:
    spoof = {
        "X-Tenant-ID": "evil",
        "X-User-ID": "root",
        "X-Scopes": "admin:all",
        "X-Roles": "admin",
        "x-user-id": "root2",
    }
    resp = requests.get(f"{gateway.url}/v1/orders?x=1", headers={**bearer(keys), **spoof}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    seen = upstream.seen[-1]["headers"]
    assert (seen["X-User-ID"], seen["X-Tenant-ID"], seen["X-Scopes"]) == (
        "user-42",
        "tenant-a",
        "orders:read orders:write",
    )
    assert "X-Roles" not in seen and "Authorization" not in seen
    assert seen["X-Request-ID"]


def test_unauthenticated_and_malformed_authorization(gateway: GatewayProcess, keys: dict[str, SigningKey]) -> None:
    token = keys["rs"].sign(claims())
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer"},
        {"Authorization": f"bearer {token}"},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": f"Bearer {token} extra"},
    ):
        resp = requests.get(f"{gateway.url}/v1/orders", headers=headers, timeout=10)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json()["error"] == "invalid_token"
        assert "Strict-Transport-Security" in resp.headers


def test_unlisted_route_and_missing_scope_are_not_forwarded(
    gateway: GatewayProcess, upstream: Upstream, keys: dict[str, SigningKey]
) -> None:
    before = len(upstream.seen)
    assert requests.get(f"{gateway.url}/v1/admin/secret", headers=bearer(keys), timeout=10).status_code == 404
    assert requests.delete(f"{gateway.url}/v1/orders", headers=bearer(keys), timeout=10).status_code == 404
    denied = requests.get(f"{gateway.url}/v1/agent/tasks", headers=bearer(keys), timeout=10)
    assert denied.status_code == 403 and "SCOPE_MISSING" in denied.json()["error_description"]
    other_tenant_viewer = bearer(keys, roles=["viewer"], scope="orders:write")
    assert (
        requests.post(f"{gateway.url}/v1/orders", headers=other_tenant_viewer, json={}, timeout=10).status_code == 403
    )
    assert len(upstream.seen) == before


def test_public_health_and_body_limits(gateway: GatewayProcess, keys: dict[str, SigningKey]) -> None:
    assert requests.get(f"{gateway.url}/healthz", timeout=5).status_code == 200
    big = requests.post(f"{gateway.url}/v1/orders", headers=bearer(keys), data=b"x" * 70000, timeout=10)
    assert big.status_code == 413


def test_conflicting_content_length_and_transfer_encoding_refused(
    gateway: GatewayProcess, keys: dict[str, SigningKey]
) -> None:
    token = keys["rs"].sign(claims())
    raw = (
        f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/admin HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(raw)
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.split(" ")[1] == "400", answer[:80]
    assert "/v1/admin" not in answer


def test_keys_unavailable_is_503_never_pass_through(upstream: Upstream, keys: dict[str, SigningKey]) -> None:
    """The issuer's JWKS cannot be fetched: the engine cannot verify, so nothing is forwarded (as the sidecar does)."""
    gw = GatewayProcess(upstream, trusting(f"http://127.0.0.1:{free_port()}/jwks"), wait_ready=False)
    try:
        before = len(upstream.seen)
        resp = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=15)
        assert resp.status_code == 503
        assert json.loads(resp.text)["error"] == "temporarily_unavailable"
        assert len(upstream.seen) == before
    finally:
        gw.stop()


def test_gateway_logs_are_masked(gateway: GatewayProcess, keys: dict[str, SigningKey]) -> None:
    resp = requests.get(
        f"{gateway.url}/v1/orders?email=carol%40example.com&card=4111111111111111", headers=bearer(keys), timeout=10
    )
    assert resp.status_code == 200
    time.sleep(0.3)
    log = gateway.log_path.read_text()
    assert "route=/v1/orders" in log
    assert "carol" not in log and "4111111111111111" not in log
    assert "[EMAIL_ADDRESS]" in log


def test_oauth_pkce_flow_through_the_gateway_end_to_end(upstream: Upstream, jwks: Any, tmp_path: Path) -> None:
    """One public origin: sign-in, token and API calls all go through the gateway."""
    from tests.support.controlplane import ControlPlaneProcess
    from tests.support.oauth import PASSWORD, REDIRECT, authorize, pkce_session

    gw_port = free_port()
    public = f"http://127.0.0.1:{gw_port}"
    cp = ControlPlaneProcess(tmp_path / "cp", f"sqlite:///{tmp_path / 'cp.db'}", CORESDK_ISSUER=public)
    sidecar = SidecarProcess(cp.sidecar_env())  # trusts the public issuer: the gateway's origin
    gw = GatewayProcess(upstream, sidecar, cp_url=cp.url, port=gw_port)
    try:
        cp.create_user("gw-user", PASSWORD, tenant_id="tenant-g", roles=["editor"])
        app = cp.create_app(
            name="via-gateway",
            scopes=["orders:read"],
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT],
        )
        discovery = requests.get(f"{public}/.well-known/oauth-authorization-server", timeout=10).json()
        assert discovery["token_endpoint"] == f"{public}/v1/oauth/token"
        client = pkce_session(cp, app, "orders:read")
        gateway_cp = type("ViaGateway", (), {"url": public})()
        location, state, verifier = authorize(gateway_cp, client, "gw-user")  # type: ignore[arg-type]
        token = client.fetch_token(
            f"{public}/v1/oauth/token", authorization_response=location, code_verifier=verifier, state=state
        )
        resp = requests.get(
            f"{public}/v1/orders", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10
        )
        assert resp.status_code == 200, resp.text
        seen = upstream.seen[-1]["headers"]
        assert (seen["X-User-ID"], seen["X-Tenant-ID"]) == ("gw-user", "tenant-g")
        write = requests.post(
            f"{public}/v1/orders", headers={"Authorization": f"Bearer {token['access_token']}"}, json={}, timeout=10
        )
        assert write.status_code == 403  # the token holds orders:read only
    finally:
        gw.stop()
        sidecar.stop()
        cp.stop()


def test_plans_and_quotas_per_tenant(
    upstream: Upstream, sidecar: SidecarProcess, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    routes = json.loads((ROOT / "config" / "routes.json").read_text())
    routes.pop("default_plan", None)  # only the tenants listed have a plan
    routes.update({"plans": {"tiny": {"requests_per_minute": 6, "burst": 2}}, "tenants": {"tenant-a": "tiny"}})
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(routes))
    gw = GatewayProcess(upstream, sidecar, routes_file=path)
    try:
        codes = [requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=10).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=10)
        assert limited.json()["error"] == "quota_exceeded" and int(limited.headers["Retry-After"]) >= 1
        other = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys, tenant_id="tenant-b"), timeout=10)
        assert (other.status_code, other.json()["error"]) == (403, "no_entitlement")
    finally:
        gw.stop()


def raw_exchange(port: int, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        return sock.recv(4096).decode(errors="replace")


@pytest.mark.parametrize(
    "shape",
    ["one huge header", "too many headers", "huge request line", "huge authorization"],
)
def test_oversized_headers_are_refused_before_anything_else(
    gateway: GatewayProcess, upstream: Upstream, keys: dict[str, SigningKey], shape: str
) -> None:
    token = keys["rs"].sign(claims())
    lines = [f"Authorization: Bearer {token}"]
    target = "/v1/orders"
    if shape == "one huge header":
        lines.append("X-Padding: " + "a" * 9000)
    elif shape == "too many headers":
        lines += [f"X-H{i}: v" for i in range(150)]
    elif shape == "huge request line":
        target += "?q=" + "b" * 9000
    else:
        lines[0] = "Authorization: Bearer " + "c" * 9000
    before = len(upstream.seen)
    head = "\r\n".join([f"GET {target} HTTP/1.1", "Host: x", *lines])
    answer = raw_exchange(gateway.port, (head + "\r\n\r\n").encode())
    status = int(answer.split(" ")[1])
    assert status in (400, 413, 414, 431), answer[:200]
    assert len(upstream.seen) == before
    assert "Traceback" not in answer


def test_malformed_request_shapes_are_refused(gateway: GatewayProcess, keys: dict[str, SigningKey]) -> None:
    token = keys["rs"].sign(claims())
    shapes = [
        f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 4\r\n"
        "Content-Length: 40\r\n\r\nabcd",
        f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: -1\r\n\r\n",
        f"GET /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization : Bearer {token}\r\n\r\n",
    ]
    for raw in shapes:
        answer = raw_exchange(gateway.port, raw.encode())
        assert answer.split(" ")[1] == "400", (raw[:60], answer[:120])


class AnsweringUpstream:
    """An application whose answers the test chooses: a cookie for whoever calls, and a body of a given size."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from aiohttp import web

        self.port = free_port()
        self.seen: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def answer(request: web.Request) -> web.StreamResponse:
            self.seen.append(dict(request.headers))
            size = int(request.query.get("size", "2"))
            if request.query.get("chunked"):
                response = web.StreamResponse(headers={"Set-Cookie": "session=for-the-first-caller"})
                response.enable_chunked_encoding()
                await response.prepare(request)
                for _ in range(size // 1000):
                    await response.write(b"c" * 1000)
                await response.write_eof()
                return response
            return web.Response(body=b"b" * size, headers={"Set-Cookie": "session=for-the-first-caller"})

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", answer)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)


def test_answers_are_relayed_as_the_upstream_sent_them_and_nothing_is_added_or_kept(
    sidecar: SidecarProcess, keys: dict[str, SigningKey]
) -> None:
    """Small answers go whole with their length, long and chunked ones are streamed; the hop adds
    no headers of its own (User-Agent, Accept, Accept-Encoding) and keeps no cookie of one caller for the next."""
    app = AnsweringUpstream()
    gw = GatewayProcess(app, sidecar)
    try:
        for size in (0, 2, 65536, 65537, 300_000):
            resp = requests.get(f"{gw.url}/v1/orders?size={size}", headers=bearer(keys), timeout=10)
            assert resp.status_code == 200, resp.text
            assert resp.content == b"b" * size
            assert resp.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
            assert resp.headers["Set-Cookie"] == "session=for-the-first-caller"
            assert "Cache-Control" not in resp.headers  # the gateway's own defaults are for its own answers only
            if size <= 65536:
                assert resp.headers["Content-Length"] == str(size)
        resp = requests.get(f"{gw.url}/v1/orders?size=5000&chunked=1", headers=bearer(keys), timeout=10)
        assert resp.status_code == 200 and resp.content == b"c" * 5000
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:  # no User-Agent, no Accept
            token = bearer(keys)["Authorization"]
            sock.sendall(
                f"GET /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n".encode()
            )
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
        seen = {k.lower() for k in app.seen[-1]}
        assert not seen & {"user-agent", "accept", "accept-encoding", "cookie"}, seen
        assert all("Cookie" not in h for h in app.seen)  # no caller sent one, so none reached the application
    finally:
        gw.stop()


def test_authz_mode_answers_only_its_three_paths(
    upstream: Upstream, sidecar: SidecarProcess, keys: dict[str, SigningKey]
) -> None:
    """The decision endpoint, health and readiness, by GET (or HEAD); any other path is a 404 and any other method a
    405 naming the allowed ones, both JSON with the gateway's own headers; nothing reaches the application."""
    authz = GatewayProcess(upstream, sidecar, env={"CORESDK_GATEWAY_MODE": "authz"})
    before = len(upstream.seen)
    try:
        ok = requests.get(
            f"{authz.url}/coresdk/authz",
            headers={**bearer(keys), "X-Original-Method": "GET", "X-Original-URI": "/v1/orders"},
            timeout=10,
        )
        assert ok.status_code == 200 and ok.headers["X-User-ID"] == "user-42"
        assert requests.get(f"{authz.url}/healthz", timeout=10).json() == {"status": "ok"}
        assert requests.head(f"{authz.url}/readyz", timeout=10).status_code == 200
        missing = requests.get(f"{authz.url}/v1/orders", headers=bearer(keys), timeout=10)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert missing.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
        assert missing.headers["Cache-Control"] == "no-store"
        posted = requests.post(f"{authz.url}/coresdk/authz", headers=bearer(keys), timeout=10)
        assert posted.status_code == 405 and posted.json()["error"] == "method_not_allowed"
        assert posted.headers["Allow"] == "GET,HEAD"
        assert posted.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        authz.stop()
    assert upstream.seen[before:] == []


def test_claims_no_principal_can_carry_are_401_through_the_gateway(
    gateway: GatewayProcess, upstream: Upstream, keys: dict[str, SigningKey]
) -> None:
    """Signed by a trusted key, yet holding a number beyond a double, a lone surrogate or nesting protobuf cannot
    parse: refused at the gateway with the usual JSON body, nothing forwarded; odd but valid claims still pass."""
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    before = len(upstream.seen)
    for value in (10**400, "\ud800", deep):
        resp = requests.get(f"{gateway.url}/v1/orders", headers=bearer(keys, extra={"x": value}), timeout=10)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"] == "invalid_token"
    assert len(upstream.seen) == before
    resp = requests.get(
        f"{gateway.url}/v1/orders",
        headers=bearer(keys, sub="zoë-😀", extra={"x": [1.5, None, {"é": True}]}),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert upstream.seen[-1]["headers"]["X-User-ID"] == "zoë-😀"  # the subject, from the Principal bytes, intact
