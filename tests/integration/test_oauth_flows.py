"""The authorization server driven by a real OAuth client library (Authlib), on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.support.controlplane import ControlPlaneProcess
from tests.support.oauth import REDIRECT, authorize, full_flow, pkce_session, verify_access_token


def test_discovery_document(cp: ControlPlaneProcess) -> None:
    meta = requests.get(f"{cp.url}/.well-known/oauth-authorization-server", timeout=5).json()
    assert meta["issuer"] == cp.url
    assert meta["token_endpoint"] == f"{cp.url}/v1/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
    assert requests.get(meta["jwks_uri"], timeout=5).json()["keys"][0]["alg"] == "RS256"


def test_pkce_authorization_code_flow(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    client = pkce_session(cp, web_app)
    location, state, verifier = authorize(cp, client, user)
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT)
    assert query["state"] == [state]
    assert query["iss"] == [cp.url]
    token = client.fetch_token(
        f"{cp.url}/v1/oauth/token", authorization_response=location, code_verifier=verifier, state=state
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "orders:read"
    assert len(token["refresh_token"]) >= 43
    claims = verify_access_token(cp, token["access_token"])
    assert claims["sub"] == user
    assert claims["client_id"] == web_app["client_id"]
    assert claims["tenant_id"] == "tenant-a"
    assert claims["roles"] == ["editor"]
    assert claims["exp"] - claims["iat"] <= 3600


def test_refresh_rotates_and_replay_revokes_the_family(
    cp: ControlPlaneProcess, web_app: dict[str, Any], user: str
) -> None:
    client, first = full_flow(cp, web_app, user)
    second = client.refresh_token(f"{cp.url}/v1/oauth/token", refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    third = client.refresh_token(f"{cp.url}/v1/oauth/token", refresh_token=second["refresh_token"])
    # reuse of an already-rotated token: refused, and the whole family dies
    replay = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(web_app["client_id"], web_app["client_secret"]),
        timeout=10,
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    latest = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": third["refresh_token"]},
        auth=(web_app["client_id"], web_app["client_secret"]),
        timeout=10,
    )
    assert latest.json()["error"] == "invalid_grant"
    for token in (second["access_token"], third["access_token"]):
        assert client.introspect_token(f"{cp.url}/v1/oauth/introspect", token=token).json() == {"active": False}
    assert any(e["type"] == "refresh_replay" for e in cp.events(client_id=web_app["client_id"], type="refresh_replay"))


def test_revoke_and_introspect(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    client, token = full_flow(cp, web_app, user)
    url = f"{cp.url}/v1/oauth/introspect"
    info = client.introspect_token(url, token=token["access_token"]).json()
    assert info["active"] is True
    assert info["sub"] == user
    assert info["scope"] == "orders:read"
    assert client.introspect_token(url, token=token["refresh_token"]).json()["active"] is True
    resp = client.revoke_token(
        f"{cp.url}/v1/oauth/revoke", token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert resp.status_code == 200
    assert client.introspect_token(url, token=token["refresh_token"]).json() == {"active": False}
    assert client.introspect_token(url, token=token["access_token"]).json() == {"active": False}
    # revoking garbage is not an error (RFC 7009 §2.2)
    assert client.revoke_token(f"{cp.url}/v1/oauth/revoke", token="not-a-token").status_code == 200


def test_logout_revokes_both(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    client, token = full_flow(cp, web_app, user)
    resp = requests.post(
        f"{cp.url}/v1/oauth/logout",
        data={"refresh_token": token["refresh_token"], "access_token": token["access_token"]},
        auth=(web_app["client_id"], web_app["client_secret"]),
        timeout=10,
    )
    assert resp.status_code == 200
    for t in (token["access_token"], token["refresh_token"]):
        assert client.introspect_token(f"{cp.url}/v1/oauth/introspect", token=t).json() == {"active": False}


def test_client_credentials(cp: ControlPlaneProcess) -> None:
    app = cp.create_app(
        name="svc", scopes=["reports:read", "reports:write"], grant_types=["client_credentials"], tenant_id="tenant-svc"
    )
    client = OAuth2Session(app["client_id"], app["client_secret"], scope="reports:read")
    token = client.fetch_token(f"{cp.url}/v1/oauth/token", grant_type="client_credentials")
    assert "refresh_token" not in token
    claims = verify_access_token(cp, token["access_token"])
    assert claims["sub"] == app["client_id"]
    assert claims["scope"] == "reports:read"
    assert claims["tenant_id"] == "tenant-svc"
    # default: every declared scope, never more
    everything = OAuth2Session(app["client_id"], app["client_secret"]).fetch_token(
        f"{cp.url}/v1/oauth/token", grant_type="client_credentials"
    )
    assert verify_access_token(cp, everything["access_token"])["scope"] == "reports:read reports:write"
    # client_secret_post works too
    post = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"]},
        timeout=10,
    )
    assert post.status_code == 200
    assert post.headers["Cache-Control"] == "no-store"


def test_public_client_pkce_without_secret(cp: ControlPlaneProcess, user: str) -> None:
    app = cp.create_app(
        name="spa", client_type="public", grant_types=["authorization_code", "refresh_token"], redirect_uris=[REDIRECT]
    )
    assert "client_secret" not in app
    client, token = full_flow(cp, app, user)
    assert verify_access_token(cp, token["access_token"])["client_id"] == app["client_id"]
    refreshed = client.refresh_token(f"{cp.url}/v1/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]


def test_browser_app_gets_refresh_token_only_as_cookie(cp: ControlPlaneProcess, user: str) -> None:
    app = cp.create_app(
        name="browser",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[REDIRECT],
        refresh_in_cookie=True,
    )
    client = pkce_session(cp, app)
    location, state, verifier = authorize(cp, client, user)
    code = parse_qs(urlsplit(location).query)["code"][0]
    resp = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert "refresh_token" not in resp.json()
    cookie = resp.headers["Set-Cookie"]
    for part in ("coresdk_refresh=", "HttpOnly", "Secure", "SameSite=Lax", "Path=/v1/oauth/token"):
        assert part in cookie
    value = cookie.split("coresdk_refresh=", 1)[1].split(";", 1)[0]
    again = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token"},
        cookies={"coresdk_refresh": value},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert again.status_code == 200, again.text
    assert "coresdk_refresh=" in again.headers["Set-Cookie"]


def test_token_events_are_queryable(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    started = time.time() - 1
    full_flow(cp, web_app, user)
    issued = cp.events(type="issued", client_id=web_app["client_id"], since=str(started))
    assert issued and all(e["type"] == "issued" and e["client_id"] == web_app["client_id"] for e in issued)
    assert cp.events(type="issued", client_id=web_app["client_id"], until=str(started - 3600)) == []


def _signer_pids(cp: ControlPlaneProcess) -> set[int]:
    assert cp.proc is not None
    tasks = Path(f"/proc/{cp.proc.pid}/task")
    return {int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()}


def test_client_credentials_survive_a_killed_signer_process(cp: ControlPlaneProcess) -> None:
    app = cp.create_app(name="svc-signer", scopes=["reports:read"], grant_types=["client_credentials"])
    before = _signer_pids(cp)
    assert before, "the control plane signs client_credentials tokens in signer processes"
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    # a request that met a dying signer is refused 503 (never a token made elsewhere, never a 500); the next one
    # gets a fresh signer
    deadline = time.monotonic() + 10
    while True:
        resp = requests.post(
            f"{cp.url}/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(app["client_id"], app["client_secret"]),
            timeout=10,
        )
        if resp.status_code == 200 or time.monotonic() > deadline:
            break
        assert resp.status_code == 503 and resp.json()["error"] == "temporarily_unavailable", resp.text
    assert resp.status_code == 200, resp.text
    assert verify_access_token(cp, resp.json()["access_token"])["sub"] == app["client_id"]
    assert _signer_pids(cp).isdisjoint(before)
