"""nginx in front, CoreSDK deciding through auth_request (config/nginx/ as shipped, a real nginx): the same answers
as the CoreSDK gateway for the same requests, identity only from the decision, bodies bounded, decisions audited,
and an unreachable decision endpoint is a refusal."""

from __future__ import annotations

import time
from collections.abc import Iterator

import jwt
import pytest

from tests.support.gateway import GatewayProcess
from tests.support.nginx import NginxProcess
from tests.support.rawhttp import RawResponse, raw_request
from tests.system.conftest import ROUTES, System


def _both(
    system: System, nginx: NginxProcess, method: str, target: str, headers: list[tuple[str, str]]
) -> tuple[RawResponse, RawResponse]:
    return (
        raw_request(system.gateway.port, method, target, headers),
        raw_request(nginx.port, method, target, headers),
    )


@pytest.mark.parametrize(
    ("method", "target", "who", "status"),
    [
        ("GET", "/v1/agent/tasks", None, 401),  # no token
        ("GET", "/v1/agent/tasks", "garbage", 401),  # a bad token
        ("GET", "/v1/orders", "reader", 403),  # a token without orders:read
        ("GET", "/v1/nothing-here", "reader", 404),  # no such route
        ("GET", "/v1/agent/tasks/%2e%2e", "reader", 400),  # ambiguous
        ("GET", "/v1/agent/tasks/1", "reader", 200),
    ],
)
def test_nginx_answers_as_the_gateway_does(
    system: System, nginx_front: NginxProcess, method: str, target: str, who: str | None, status: int
) -> None:
    token = {"reader": system.tasks_reader, "garbage": "not.a.token"}.get(who or "", "")
    headers = [("Authorization", f"Bearer {token}")] if token else []
    via_gateway, via_nginx = _both(system, nginx_front, method, target, headers)
    assert via_gateway.status == via_nginx.status == status, (via_gateway.text, via_nginx.text)
    if status != 200:
        assert via_nginx.json() == via_gateway.json()
        assert via_nginx.header("Content-Type") == "application/json"
    if status == 401:
        assert via_nginx.header("WWW-Authenticate") == via_gateway.header("WWW-Authenticate")


def test_identity_reaches_the_application_only_from_the_decision(system: System, nginx_front: NginxProcess) -> None:
    resp = raw_request(
        nginx_front.port,
        "GET",
        "/v1/agent/tasks/7?x=1",
        [
            ("Authorization", f"Bearer {system.tasks_reader}"),
            ("X-User-ID", "root"),
            ("X_User_ID", "root"),
            ("X-Roles", "admin"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6"),
            ("Accept", "application/json"),
        ],
    )
    assert resp.status == 200, resp.text
    seen = system.upstream.seen[-1]
    assert seen["raw_path"] == "/v1/agent/tasks/7?x=1"
    values = [v for _, v in seen["header_items"]]
    assert "root" not in values and "admin" not in values and "6.6.6.6" not in str(values)
    headers = {k.lower(): v for k, v in seen["header_items"]}
    assert headers["x-user-id"] == jwt.decode(system.tasks_reader, options={"verify_signature": False})["sub"]
    assert headers["x-tenant-id"] == "tenant-a" and headers["x-scopes"] == "tasks:read"
    assert headers["x-forwarded-for"] == "127.0.0.1" and "authorization" not in headers
    assert headers["accept"] == "application/json"


def test_a_large_chunked_body_is_refused_by_nginx(system: System, nginx_front: NginxProcess) -> None:
    token = system.cp.client_token(system.orders_app, "orders:write")
    before = len(system.upstream.seen)
    resp = raw_request(
        nginx_front.port, "POST", "/v1/orders", [("Authorization", f"Bearer {token}")], chunks=[b"z" * 65536] * 40
    )
    assert resp.status == 413
    assert system.upstream.seen[before:] == []


def test_every_decision_is_audited(system: System, nginx_front: NginxProcess) -> None:
    raw_request(nginx_front.port, "GET", "/v1/agent/tasks", [("Authorization", f"Bearer {system.tasks_reader}")])
    raw_request(nginx_front.port, "GET", "/v1/orders", [("Authorization", f"Bearer {system.tasks_reader}")])
    deadline = time.monotonic() + 20
    outcomes: set[str] = set()
    while time.monotonic() < deadline:
        records = system.cp.admin("GET", "/api/v1/audit?chain_id=system-nginx&limit=1000").json()["records"]
        outcomes = {r["outcome"] for r in records}
        if {"allow", "deny"} <= outcomes:
            break
        time.sleep(0.2)
    assert {"allow", "deny"} <= outcomes


@pytest.fixture
def lonely_nginx(system: System) -> Iterator[tuple[NginxProcess, GatewayProcess]]:
    authz = GatewayProcess(
        system.upstream,
        system.sidecar,
        cp_url=system.cp.url,
        routes_file=ROUTES,
        env={"CORESDK_GATEWAY_MODE": "authz", "CORESDK_GATEWAY_AUDIT_CHAIN": "system-nginx-2"},
    )
    nginx = NginxProcess(authz.port, system.upstream.port, system.cp.port)
    yield nginx, authz
    nginx.stop()


def test_an_unreachable_decision_endpoint_is_503_and_nothing_is_forwarded(
    system: System, lonely_nginx: tuple[NginxProcess, GatewayProcess]
) -> None:
    nginx, authz = lonely_nginx
    ok = raw_request(nginx.port, "GET", "/v1/agent/tasks", [("Authorization", f"Bearer {system.tasks_reader}")])
    assert ok.status == 200
    authz.stop()
    before = len(system.upstream.seen)
    resp = raw_request(nginx.port, "GET", "/v1/agent/tasks", [("Authorization", f"Bearer {system.tasks_reader}")])
    assert resp.status == 503 and resp.json()["error"] == "temporarily_unavailable"
    assert system.upstream.seen[before:] == []
