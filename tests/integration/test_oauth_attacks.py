"""Attacks and bad input against the authorization server: each gets a precise RFC error and changes nothing."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from controlplane.oauth.pkce import s256
from tests.support.browser import login_form, sign_in
from tests.support.controlplane import ControlPlaneProcess
from tests.support.dbaccess import db_dump, db_execute
from tests.support.oauth import PASSWORD, REDIRECT, authorize, full_flow, pkce_session


def auth_url(cp: ControlPlaneProcess, app: dict[str, Any], **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "orders:read",
        "state": "st-123",
        "code_challenge": s256(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return f"{cp.url}/v1/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def redirect_error(resp: requests.Response) -> dict[str, list[str]]:
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["Location"]).query)


def token_post(cp: ControlPlaneProcess, app: dict[str, Any], data: dict[str, str], **kw: Any) -> requests.Response:
    return requests.post(
        f"{cp.url}/v1/oauth/token", data=data, auth=(app["client_id"], app["client_secret"]), timeout=10, **kw
    )


def code_for(cp: ControlPlaneProcess, app: dict[str, Any], user: str) -> tuple[str, str]:
    client = pkce_session(cp, app)
    location, _, verifier = authorize(cp, client, user)
    return parse_qs(urlsplit(location).query)["code"][0], verifier


# --- authorization endpoint ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "orders:read admin:all"}, "invalid_scope"),
    ],
)
def test_authorize_errors_redirect_with_state(
    cp: ControlPlaneProcess, web_app: dict[str, Any], overrides: dict[str, str | None], error: str
) -> None:
    query = redirect_error(requests.get(auth_url(cp, web_app, **overrides), allow_redirects=False, timeout=10))
    assert query["error"] == [error]
    assert query["state"] == ["st-123"]
    assert query["iss"] == [cp.url]


def test_missing_state_is_refused(cp: ControlPlaneProcess, web_app: dict[str, Any]) -> None:
    query = redirect_error(requests.get(auth_url(cp, web_app, state=None), allow_redirects=False, timeout=10))
    assert query["error"] == ["invalid_request"]
    assert "state" not in query


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback/evil",
        "https://app.example/callbackx",
        "https://app.example/callback?next=https://evil.example",
        "https://APP.example/callback",
        "https://app.example/Callback",
        "https://app.example/callback#frag",
        "https://evil@app.example/callback",
        "http://app.example/callback",
        "https://app.example.evil.example/callback",
        "https://app.example:444/callback",
        "http://127.0.0.1:5555/cbx",
        "http://localhost/cb",
        None,
    ],
)
def test_redirect_uri_tricks_never_redirect(cp: ControlPlaneProcess, web_app: dict[str, Any], uri: str | None) -> None:
    resp = requests.get(auth_url(cp, web_app, redirect_uri=uri), allow_redirects=False, timeout=10)
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_loopback_redirect_port_may_vary(cp: ControlPlaneProcess, web_app: dict[str, Any]) -> None:
    resp = requests.get(
        auth_url(cp, web_app, redirect_uri="http://127.0.0.1:5555/cb"), allow_redirects=False, timeout=10
    )
    assert resp.status_code == 200
    assert "<form" in resp.text


def test_unknown_client_is_an_error_page(cp: ControlPlaneProcess, web_app: dict[str, Any]) -> None:
    resp = requests.get(auth_url(cp, {"client_id": "cli_nope"}), allow_redirects=False, timeout=10)
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_wrong_password_is_generic_and_recorded(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    for username in (user, "nobody-here"):
        resp = sign_in(auth_url(cp, web_app), username, "wrong password!!")
        assert resp.status_code == 401
        assert "Invalid username or password." in resp.text
        assert "Location" not in resp.headers
    failed = cp.events(type="login_failed", client_id=web_app["client_id"])
    assert {e["subject"] for e in failed} >= {user, "nobody-here"}


def test_tampered_csrf_and_cross_origin_are_refused(
    cp: ControlPlaneProcess, web_app: dict[str, Any], user: str
) -> None:
    session, fields, _ = login_form(auth_url(cp, web_app))
    action = f"{cp.url}/v1/oauth/authorize"
    creds = {"username": user, "password": PASSWORD}
    bad = {**fields, **creds, "csrf": fields["csrf"][:-1] + ("0" if fields["csrf"][-1] != "0" else "1")}
    assert session.post(action, data=bad, allow_redirects=False, timeout=10).status_code == 400
    # the token is bound to the exact request: changing the scope invalidates it
    swapped = {**fields, **creds, "scope": "orders:write"}
    assert session.post(action, data=swapped, allow_redirects=False, timeout=10).status_code == 400
    cross = session.post(
        action, data={**fields, **creds}, headers={"Origin": "https://evil.example"}, allow_redirects=False, timeout=10
    )
    assert cross.status_code == 403
    ok = session.post(action, data={**fields, **creds}, headers={"Origin": cp.url}, allow_redirects=False, timeout=10)
    assert ok.status_code == 302


# --- token endpoint: codes and PKCE --------------------------------------------------------------------------------


def test_wrong_verifier_is_refused_and_burns_the_code(
    cp: ControlPlaneProcess, web_app: dict[str, Any], user: str
) -> None:
    code, verifier = code_for(cp, web_app, user)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    wrong = token_post(cp, web_app, {**data, "code_verifier": secrets.token_urlsafe(48)})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    missing = token_post(cp, web_app, data)
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    # single use: a failed PKCE attempt consumed the code, so guessing verifiers is pointless
    assert token_post(cp, web_app, {**data, "code_verifier": verifier}).json()["error"] == "invalid_grant"


def test_code_replay_revokes_tokens_issued_from_it(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    code, verifier = code_for(cp, web_app, user)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    first = token_post(cp, web_app, data)
    assert first.status_code == 200
    replay = token_post(cp, web_app, data)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    client = OAuth2Session(web_app["client_id"], web_app["client_secret"])
    for token in (first.json()["access_token"], first.json()["refresh_token"]):
        assert client.introspect_token(f"{cp.url}/v1/oauth/introspect", token=token).json() == {"active": False}
    assert cp.events(type="code_replay", client_id=web_app["client_id"])


def test_code_bound_to_client_and_redirect_uri(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    other = cp.create_app(name="other", grant_types=["authorization_code"], redirect_uris=[REDIRECT])
    code, verifier = code_for(cp, web_app, user)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    assert token_post(cp, other, data).json()["error"] == "invalid_grant"
    code, verifier = code_for(cp, web_app, user)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1/cb",
        "code_verifier": verifier,
    }
    assert token_post(cp, web_app, data).json()["error"] == "invalid_grant"


def test_expired_code(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    code, verifier = code_for(cp, web_app, user)
    db_execute(cp.database_url, f"UPDATE auth_codes SET expires_at = {time.time() - 1} WHERE used_at IS NULL")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    resp = token_post(cp, web_app, data)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")


# --- token endpoint: clients, scopes, input -------------------------------------------------------------------------


def test_scope_escalation_refused(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    svc = cp.create_app(name="svc-scope", scopes=["a:read"], grant_types=["client_credentials"])
    assert (
        token_post(cp, svc, {"grant_type": "client_credentials", "scope": "a:read a:write"}).json()["error"]
        == "invalid_scope"
    )
    _, token = full_flow(cp, web_app, user, scope="orders:read")
    wider = token_post(
        cp, web_app, {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "scope": "orders:write"}
    )
    assert wider.json()["error"] == "invalid_scope"


def test_wrong_secret_and_unknown_client(cp: ControlPlaneProcess, web_app: dict[str, Any]) -> None:
    bad = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(web_app["client_id"], "wrong-secret"),
        timeout=10,
    )
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    assert bad.headers["WWW-Authenticate"].startswith("Basic")
    unknown = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "cli_x", "client_secret": "y"},
        timeout=10,
    )
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")


def test_secret_rotation_with_grace(cp: ControlPlaneProcess) -> None:
    app = cp.create_app(name="rotating", scopes=["x:read"], grant_types=["client_credentials"])
    old = app["client_secret"]
    rotated = cp.admin("POST", f"/v1/oauth/apps/{app['id']}/rotate-secret", {"grace_seconds": 2})
    assert rotated.status_code == 200
    new = rotated.json()["client_secret"]
    listed = cp.admin("GET", f"/v1/oauth/apps/{app['id']}").json()
    assert "client_secret" not in listed
    assert len(listed["secrets"]) == 2
    assert all("age_days" in s for s in listed["secrets"])
    assert [s["expires_at"] is not None for s in listed["secrets"]] == [True, False]
    grant = {"grant_type": "client_credentials"}
    assert token_post(cp, {**app, "client_secret": old}, grant).status_code == 200
    assert token_post(cp, {**app, "client_secret": new}, grant).status_code == 200
    time.sleep(2.5)
    assert token_post(cp, {**app, "client_secret": old}, grant).status_code == 401
    assert token_post(cp, {**app, "client_secret": new}, grant).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"json": {"grant_type": "client_credentials"}}, 400, "invalid_request"),
        (
            {
                "data": "grant_type=client_credentials&grant_type=client_credentials",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
            "invalid_request",
        ),
        ({"data": {"grant_type": "password", "username": "a", "password": "b"}}, 400, "unsupported_grant_type"),
        ({"data": {"scope": "x"}}, 400, "invalid_request"),
        ({"data": {"grant_type": "authorization_code"}}, 400, "invalid_request"),
        (
            {
                "data": b"grant_type=client_credentials&x=" + b"a" * 70000,
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            413,
            "invalid_request",
        ),
        (
            {"data": b"grant_type=\xff\xfe", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
            400,
            "invalid_request",
        ),
    ],
)
def test_malformed_token_requests(
    cp: ControlPlaneProcess, web_app: dict[str, Any], kwargs: dict[str, Any], status: int, error: str
) -> None:
    resp = requests.post(
        f"{cp.url}/v1/oauth/token", auth=(web_app["client_id"], web_app["client_secret"]), timeout=10, **kwargs
    )
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error
    assert "Traceback" not in resp.text


def test_grant_not_registered_for_app(cp: ControlPlaneProcess, web_app: dict[str, Any]) -> None:
    resp = token_post(cp, web_app, {"grant_type": "client_credentials"})
    assert (resp.status_code, resp.json()["error"]) == (400, "unauthorized_client")


def test_two_client_auth_methods_refused(cp: ControlPlaneProcess, web_app: dict[str, Any]) -> None:
    resp = token_post(cp, web_app, {"grant_type": "client_credentials", "client_secret": web_app["client_secret"]})
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_request")


def test_malformed_request_leaves_the_code_usable(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    code, verifier = code_for(cp, web_app, user)
    body = f"grant_type=authorization_code&code={code}&code={code}&redirect_uri={REDIRECT}&code_verifier={verifier}"
    dup = requests.post(
        f"{cp.url}/v1/oauth/token",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=(web_app["client_id"], web_app["client_secret"]),
        timeout=10,
    )
    assert dup.json()["error"] == "invalid_request"
    ok = token_post(
        cp,
        web_app,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
    )
    assert ok.status_code == 200


# --- admin API --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/oauth/apps"),
        ("POST", "/v1/oauth/apps"),
        ("GET", "/v1/oauth/apps/app_x"),
        ("PATCH", "/v1/oauth/apps/app_x"),
        ("DELETE", "/v1/oauth/apps/app_x"),
        ("POST", "/v1/oauth/apps/app_x/rotate-secret"),
        ("GET", "/v1/users"),
        ("POST", "/v1/users"),
        ("GET", "/api/v1/token-events"),
        ("GET", "/api/v1/revocations"),
        ("POST", "/api/v1/keys/rotate"),
        ("GET", "/metrics"),
    ],
)
def test_admin_routes_require_the_admin_token(cp: ControlPlaneProcess, method: str, path: str) -> None:
    for token in ("", "wrong-token"):
        resp = cp.admin(method, path, {}, token=token)
        assert resp.status_code == 401, (method, path, resp.text)
        assert resp.json()["error"] == "unauthorized"


def test_public_routes_need_no_token(cp: ControlPlaneProcess) -> None:
    for path in ("/healthz", "/api/v1/jwks", "/.well-known/jwks.json", "/.well-known/oauth-authorization-server"):
        assert requests.get(f"{cp.url}{path}", timeout=5).status_code == 200
    missing = requests.get(f"{cp.url}/nope", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"name": "x", "scopes": ["a"], "colour": "red"}, 400, "invalid_request"),
        ({"name": "x"}, 400, "invalid_request"),
        ({"name": "x", "scopes": ["a:*"]}, 400, "invalid_client_metadata"),
        ({"name": "x", "scopes": []}, 400, "invalid_client_metadata"),
        ({"name": "x", "scopes": ["a"], "redirect_uris": ["https://*.example/cb"]}, 400, "invalid_client_metadata"),
        ({"name": "x", "scopes": ["a"], "redirect_uris": ["https://a.example/cb#f"]}, 400, "invalid_client_metadata"),
        ({"name": "x", "scopes": ["a"], "redirect_uris": ["http://a.example/cb"]}, 400, "invalid_client_metadata"),
        (
            {"name": "x", "scopes": ["a"], "client_type": "public", "grant_types": ["client_credentials"]},
            400,
            "invalid_client_metadata",
        ),
        ({"name": "x", "scopes": ["a"], "grant_types": ["implicit"]}, 400, "invalid_client_metadata"),
    ],
)
def test_app_registration_validation(cp: ControlPlaneProcess, body: dict[str, Any], status: int, error: str) -> None:
    before = len(cp.admin("GET", "/v1/oauth/apps").json()["apps"])
    resp = cp.admin("POST", "/v1/oauth/apps", body)
    assert (resp.status_code, resp.json()["error"]) == (status, error), resp.text
    assert len(cp.admin("GET", "/v1/oauth/apps").json()["apps"]) == before


def test_admin_rejects_bad_json_and_content_type(cp: ControlPlaneProcess) -> None:
    headers = {"Authorization": "Bearer " + "test-admin-token-0123456789abcdefghijklmnop"}
    bad_json = requests.post(
        f"{cp.url}/v1/oauth/apps", data=b"{nope", headers={**headers, "Content-Type": "application/json"}, timeout=5
    )
    assert (bad_json.status_code, bad_json.json()["error"]) == (400, "invalid_json")
    form = requests.post(f"{cp.url}/v1/oauth/apps", data={"name": "x"}, headers=headers, timeout=5)
    assert (form.status_code, form.json()["error"]) == (415, "unsupported_media_type")
    array = requests.post(f"{cp.url}/v1/oauth/apps", json=[1], headers=headers, timeout=5)
    assert (array.status_code, array.json()["error"]) == (400, "invalid_request")


def test_no_secret_in_the_clear_in_the_store(cp: ControlPlaneProcess, web_app: dict[str, Any], user: str) -> None:
    _, token = full_flow(cp, web_app, user)
    code, _ = code_for(cp, web_app, user)
    dump = db_dump(cp.database_url)
    for value in (web_app["client_secret"], token["refresh_token"], code, PASSWORD):
        assert value not in dump
    assert "BEGIN PRIVATE KEY" not in dump


def test_rotate_secret_with_a_dated_grace_expiry(cp: ControlPlaneProcess) -> None:
    import datetime as dt

    app = cp.create_app(name="dated", scopes=["x:read"], grant_types=["client_credentials"])
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(microsecond=0)
    resp = cp.admin("POST", f"/v1/oauth/apps/{app['id']}/rotate-secret", {"previous_expires_at": expiry.isoformat()})
    assert resp.status_code == 200, resp.text
    old = [s for s in resp.json()["secrets"] if s["expires_at"] is not None]
    assert len(old) == 1
    assert abs(dt.datetime.fromisoformat(old[0]["expires_at"].replace("Z", "+00:00")) - expiry) < dt.timedelta(
        seconds=2
    )
    past = cp.admin(
        "POST", f"/v1/oauth/apps/{app['id']}/rotate-secret", {"previous_expires_at": "2001-01-01T00:00:00Z"}
    )
    assert (past.status_code, past.json()["error"]) == (400, "invalid_request")
