"""What an administrator takes away is gone at once: scopes withdrawn from an app and deleted users (issue 11, #9).

Against the real control plane on SQLite and on PostgreSQL: refresh families and pending codes keep only the scopes
the app still has, live access tokens holding a withdrawn scope are revoked, and a deleted user's pending codes and
refresh families redeem nothing.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.controlplane import ControlPlaneProcess
from tests.support.oauth import PASSWORD, REDIRECT, authorize, full_flow, pkce_session, verify_access_token

POOL = ("orders:read", "orders:write", "tasks:read", "tasks:create")


def web_app(cp: ControlPlaneProcess, scopes: list[str]) -> dict[str, Any]:
    return cp.create_app(
        name="withdrawal",
        scopes=scopes,
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[REDIRECT],
    )


def new_user(cp: ControlPlaneProcess) -> dict[str, Any]:
    return cp.create_user(f"wd-{secrets.token_hex(4)}", PASSWORD, tenant_id="tenant-a", roles=["editor"])


def token_post(cp: ControlPlaneProcess, app: dict[str, Any], **data: str) -> requests.Response:
    return requests.post(
        f"{cp.url}/v1/oauth/token", data=data, auth=(app["client_id"], app["client_secret"]), timeout=10
    )


def set_scopes(cp: ControlPlaneProcess, app: dict[str, Any], scopes: list[str]) -> None:
    resp = cp.admin("PATCH", f"/v1/oauth/apps/{app['id']}", {"scopes": scopes})
    assert resp.status_code == 200, resp.text


def active(cp: ControlPlaneProcess, app: dict[str, Any], token: str) -> bool:
    resp = requests.post(
        f"{cp.url}/v1/oauth/introspect",
        data={"token": token},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["active"])


def revoked_jtis(cp: ControlPlaneProcess) -> set[str]:
    """The whole revocation feed, as a sidecar pages through it."""
    jtis: set[str] = set()
    since = 0
    while True:
        resp = cp.admin("GET", f"/api/v1/revocations?since={since}")
        assert resp.status_code == 200, resp.text
        page = resp.json()
        if not page["revocations"]:
            return jtis
        jtis |= {item["jti"] for item in page["revocations"]}
        since = page["next_since"]


def pending_code(cp: ControlPlaneProcess, app: dict[str, Any], subject: str, scope: str) -> tuple[str, str]:
    client = pkce_session(cp, app, scope)
    location, _, verifier = authorize(cp, client, subject)
    return parse_qs(urlsplit(location).query)["code"][0], verifier


def redeem(cp: ControlPlaneProcess, app: dict[str, Any], code: str, verifier: str) -> requests.Response:
    return token_post(
        cp, app, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    app_scopes=st.lists(st.sampled_from(POOL), min_size=1, unique=True),
    data=st.data(),
)
def test_refresh_never_outlives_a_withdrawn_scope(cp: ControlPlaneProcess, app_scopes: list[str], data: Any) -> None:
    granted = data.draw(st.lists(st.sampled_from(app_scopes), min_size=1, unique=True), label="granted")
    after = data.draw(st.lists(st.sampled_from(POOL), min_size=1, unique=True), label="scopes after the PATCH")
    app = web_app(cp, app_scopes)
    user = new_user(cp)
    _, first = full_flow(cp, app, user["subject"], " ".join(granted))
    set_scopes(cp, app, after)
    remaining = [s for s in granted if s in after]
    withdrawn = [s for s in granted if s not in after]
    refreshed = token_post(cp, app, grant_type="refresh_token", refresh_token=first["refresh_token"])
    if not remaining:
        assert refreshed.status_code == 400, refreshed.text
        assert refreshed.json()["error"] == "invalid_grant"
    else:
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["scope"].split() == remaining
        claims = verify_access_token(cp, refreshed.json()["access_token"])
        assert claims["scope"].split() == remaining
        if withdrawn:  # asking for a withdrawn scope explicitly is refused as exceeding the grant
            again = token_post(
                cp,
                app,
                grant_type="refresh_token",
                refresh_token=refreshed.json()["refresh_token"],
                scope=withdrawn[0],
            )
            assert again.json()["error"] == "invalid_scope", again.text
    # the access token minted before the PATCH dies with the scope it carried (and reaches sidecars as revoked)
    assert active(cp, app, first["access_token"]) is not bool(withdrawn)
    jti = verify_access_token(cp, first["access_token"])["jti"]
    assert (jti in revoked_jtis(cp)) is bool(withdrawn)
    if withdrawn:
        (event,) = cp.events(client_id=app["client_id"], type="app_scopes_narrowed")
        assert set(event["detail"]["removed"]) >= set(withdrawn)


def test_a_pending_code_issues_only_the_scopes_the_app_still_has(cp: ControlPlaneProcess) -> None:
    app = web_app(cp, ["orders:read", "orders:write"])
    user = new_user(cp)
    code, verifier = pending_code(cp, app, user["subject"], "orders:read orders:write")
    set_scopes(cp, app, ["orders:read"])
    resp = redeem(cp, app, code, verifier)
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "orders:read"
    assert verify_access_token(cp, resp.json()["access_token"])["scope"] == "orders:read"
    code, verifier = pending_code(cp, app, user["subject"], "orders:read")
    set_scopes(cp, app, ["tasks:read"])
    refused = redeem(cp, app, code, verifier)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_deleting_a_user_burns_its_codes_and_revokes_its_families(cp: ControlPlaneProcess) -> None:
    app = web_app(cp, ["orders:read"])
    user = new_user(cp)
    _, tokens = full_flow(cp, app, user["subject"])
    code, verifier = pending_code(cp, app, user["subject"], "orders:read")
    resp = cp.admin("DELETE", f"/v1/users/{user['id']}")
    assert resp.status_code == 204, resp.text

    late = redeem(cp, app, code, verifier)
    assert late.status_code == 400, late.text
    assert late.json()["error"] == "invalid_grant"
    refresh = token_post(cp, app, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.status_code == 400, refresh.text
    assert refresh.json()["error"] == "invalid_grant"
    assert active(cp, app, tokens["access_token"]) is False
    assert verify_access_token(cp, tokens["access_token"])["jti"] in revoked_jtis(cp)

    (deleted,) = [e for e in cp.events(type="user_deleted") if e["subject"] == user["subject"]]
    assert deleted["detail"] == {"codes_burned": 1, "families_revoked": 1}
    revoked = [e for e in cp.events(client_id=app["client_id"], type="revoked") if e["subject"] == user["subject"]]
    assert [e["detail"]["reason"] for e in revoked] == ["user_deleted"]
