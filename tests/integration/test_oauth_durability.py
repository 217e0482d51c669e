"""Concurrency, grace window, restarts and rate limits of the authorization server, on both backends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import database_url
from tests.support.browser import sign_in
from tests.support.controlplane import ControlPlaneProcess
from tests.support.oauth import REDIRECT, full_flow, pkce_session, verify_access_token

CONCURRENCY = 50


def concurrent_refresh(cp: ControlPlaneProcess, app: dict[str, Any], refresh_token: str) -> list[requests.Response]:
    barrier = threading.Barrier(CONCURRENCY)

    def one(_: int) -> requests.Response:
        session = requests.Session()
        barrier.wait(10)
        return session.post(
            f"{cp.url}/v1/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(app["client_id"], app["client_secret"]),
            timeout=30,
        )

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, range(CONCURRENCY)))


def refreshed_events(cp: ControlPlaneProcess, app: dict[str, Any]) -> int:
    return len(cp.events(type="refreshed", client_id=app["client_id"], limit="1000"))


def test_concurrent_refresh_mints_exactly_one_successor(cp: ControlPlaneProcess, user: str) -> None:
    app = cp.create_app(name="race", grant_types=["authorization_code", "refresh_token"], redirect_uris=[REDIRECT])
    _, token = full_flow(cp, app, user)
    results = concurrent_refresh(cp, app, token["refresh_token"])
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in results if r.status_code != 400]
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    assert refreshed_events(cp, app) == 1
    # the losers were reuses of a rotated token: the family is revoked, the winner's successor too
    follow = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": winners[0].json()["refresh_token"]},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert follow.json()["error"] == "invalid_grant"


@pytest.fixture(scope="module")
def cp_grace(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlaneProcess]:
    directory = tmp_path_factory.mktemp(f"cp-grace-{backend}")
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    proc = ControlPlaneProcess(directory, database_url(backend, pg, directory), CORESDK_REFRESH_GRACE="3")
    yield proc
    proc.stop()


def test_grace_window_answers_retries_with_the_same_pair(cp_grace: ControlPlaneProcess) -> None:
    cp = cp_grace
    cp.create_user("grace-user", "correct horse battery staple")
    app = cp.create_app(name="grace", grant_types=["authorization_code", "refresh_token"], redirect_uris=[REDIRECT])
    _, token = full_flow(cp, app, "grace-user")
    results = concurrent_refresh(cp, app, token["refresh_token"])
    assert {r.status_code for r in results} == {200}
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in results}
    assert len(pairs) == 1
    assert refreshed_events(cp, app) == 1
    successor = next(iter(pairs))[1]
    time.sleep(3.5)  # past the grace window, the old token is a replay
    replay = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert replay.json()["error"] == "invalid_grant"
    dead = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": successor},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert dead.json()["error"] == "invalid_grant"


def test_restart_keeps_apps_tokens_and_keys(cp_grace: ControlPlaneProcess) -> None:
    cp = cp_grace
    cp.create_user("restart-user", "correct horse battery staple")
    app = cp.create_app(name="restart", grant_types=["authorization_code", "refresh_token"], redirect_uris=[REDIRECT])
    _, token = full_flow(cp, app, "restart-user")
    kids = {k["kid"] for k in requests.get(f"{cp.url}/api/v1/jwks", timeout=5).json()["keys"]}
    cp.restart()
    assert {k["kid"] for k in requests.get(f"{cp.url}/api/v1/jwks", timeout=5).json()["keys"]} == kids
    assert verify_access_token(cp, token["access_token"])["sub"] == "restart-user"
    refreshed = requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert refreshed.status_code == 200, refreshed.text


def test_key_rotation_keeps_old_tokens_valid(cp_grace: ControlPlaneProcess) -> None:
    cp = cp_grace
    app = cp.create_app(name="keys", scopes=["k:read"], grant_types=["client_credentials"])

    def token() -> str:
        return cp.client_token(app)

    old = token()
    rotated = cp.admin("POST", "/api/v1/keys/rotate")
    assert rotated.status_code == 200
    import jwt

    # published at once, signing only from activates_at (publish before activate)
    published = requests.get(f"{cp.url}/api/v1/jwks", timeout=10).json()["keys"]
    assert rotated.json()["kid"] in {k["kid"] for k in published}
    old_kid = jwt.get_unverified_header(old)["kid"]
    assert jwt.get_unverified_header(token())["kid"] == rotated.json()["active_kid"] == old_kid
    time.sleep(max(0.0, rotated.json()["activates_at"] - time.time()) + 0.05)
    new = token()
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"] == rotated.json()["kid"]
    for t in (old, new):
        assert verify_access_token(cp, t)["client_id"] == app["client_id"]


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    cp = ControlPlaneProcess(
        tmp_path,
        f"sqlite:///{tmp_path / 'cp.db'}",
        CORESDK_RATE_CLIENT_RPS="0.5",
        CORESDK_RATE_CLIENT_BURST="3",
        CORESDK_RATE_LOGIN_PER_MIN="2",
    )
    try:
        app = cp.create_app(name="limited", scopes=["a:read"], grant_types=["client_credentials"])
        codes = [
            requests.post(
                f"{cp.url}/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(app["client_id"], app["client_secret"]),
                timeout=10,
            )
            for _ in range(5)
        ]
        assert [r.status_code for r in codes[:3]] == [200, 200, 200]
        limited = codes[-1]
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"] == "slow_down"
        cp.create_user("limited-user", "correct horse battery staple")
        web = cp.create_app(name="limited-web", grant_types=["authorization_code"], redirect_uris=[REDIRECT])
        client = pkce_session(cp, web)
        uri, _ = client.create_authorization_url(f"{cp.url}/v1/oauth/authorize", code_verifier="v" * 50)
        attempts = [sign_in(uri, "limited-user", "wrong password!!").status_code for _ in range(3)]
        assert attempts == [401, 401, 429]
        metrics = cp.admin("GET", "/metrics").text
        assert 'coresdk_cp_rate_limited_total{endpoint="token",kind="client"}' in metrics
        assert 'coresdk_cp_rate_limited_total{endpoint="login",kind="ip_user"}' in metrics
    finally:
        cp.stop()
