"""Admin actions leave a trace and retention cannot be cut short (issue 11, #10), on the real control plane.

Every action taken with the admin token is a record of the control plane's own hash chain (actor "admin"), whose
metadata goes through the masking detectors like any sidecar record; a prune may never cut later than
now − CORESDK_AUDIT_RETENTION_DAYS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
import requests

from coresdk.audit.record import GENESIS_HASH, seal, utc_timestamp, validate_fields
from tests.support.browser import sign_in
from tests.support.controlplane import ControlPlaneProcess
from tests.support.oauth import pkce_session

RETENTION_DAYS = 400  # the control plane's default, which the test fixture keeps


def own_chain(cp: ControlPlaneProcess, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in {"chain_id": "controlplane", "limit": "1000", **filters}.items())
    resp = cp.admin("GET", f"/api/v1/audit?{query}")
    assert resp.status_code == 200, resp.text
    records: list[dict[str, Any]] = resp.json()["records"]
    return records


def chain_valid(cp: ControlPlaneProcess, chain_id: str) -> bool:
    report = cp.admin("GET", f"/api/v1/audit?verify_chain=true&chain_id={chain_id}").json()
    return bool(report["chain_valid"])


def ok(resp: requests.Response) -> dict[str, Any]:
    assert resp.status_code in (200, 201, 204), resp.text
    return resp.json() if resp.content else {}


# Each admin action, and the own-chain record (action, resource) it must leave.
Action = Callable[[ControlPlaneProcess], tuple[str, str]]


def _create_app(cp: ControlPlaneProcess) -> tuple[str, str]:
    app = cp.create_app(name="trail", scopes=["orders:read"], grant_types=["client_credentials"])
    return "admin.app_created", f"app/{app['client_id']}"


def _escalate_app(cp: ControlPlaneProcess) -> tuple[str, str]:
    app = cp.create_app(name="trail", scopes=["orders:read"], grant_types=["client_credentials"])
    ok(cp.admin("PATCH", f"/v1/oauth/apps/{app['id']}", {"scopes": ["admin:admin"]}))
    return "admin.app_updated", f"app/{app['client_id']}"


def _narrow_app(cp: ControlPlaneProcess) -> tuple[str, str]:
    app = cp.create_app(name="trail", scopes=["orders:read", "orders:write"], grant_types=["client_credentials"])
    ok(cp.admin("PATCH", f"/v1/oauth/apps/{app['id']}", {"scopes": ["orders:read"]}))
    return "admin.app_scopes_narrowed", f"app/{app['client_id']}"


def _delete_app(cp: ControlPlaneProcess) -> tuple[str, str]:
    app = cp.create_app(name="trail", scopes=["orders:read"], grant_types=["client_credentials"])
    ok(cp.admin("DELETE", f"/v1/oauth/apps/{app['id']}"))
    return "admin.app_deleted", f"app/{app['client_id']}"


def _rotate_secret(cp: ControlPlaneProcess) -> tuple[str, str]:
    app = cp.create_app(name="trail", scopes=["orders:read"], grant_types=["client_credentials"])
    ok(cp.admin("POST", f"/v1/oauth/apps/{app['id']}/rotate-secret", {"grace_seconds": 60}))
    return "admin.secret_rotated", f"app/{app['client_id']}"


def _create_user(cp: ControlPlaneProcess) -> tuple[str, str]:
    user = cp.create_user(f"trail-{secrets.token_hex(4)}")
    return "admin.user_created", f"user/{user['id']}"


def _delete_user(cp: ControlPlaneProcess) -> tuple[str, str]:
    user = cp.create_user(f"trail-{secrets.token_hex(4)}")
    ok(cp.admin("DELETE", f"/v1/users/{user['id']}"))
    return "admin.user_deleted", f"user/{user['id']}"


def _rotate_keys(cp: ControlPlaneProcess) -> tuple[str, str]:
    kid = ok(cp.admin("POST", "/api/v1/keys/rotate"))["kid"]
    return "admin.signing_keys_rotated", f"key/{kid}"


def _prune(cp: ControlPlaneProcess) -> tuple[str, str]:
    ok(cp.admin("POST", "/api/v1/audit/prune", {"before": "2001-01-01T00:00:00Z"}))
    return "admin.audit_pruned", "audit/retention"


ADMIN_ACTIONS = [
    _create_app,
    _escalate_app,
    _narrow_app,
    _delete_app,
    _rotate_secret,
    _create_user,
    _delete_user,
    _rotate_keys,
    _prune,
]


@pytest.mark.parametrize("act", ADMIN_ACTIONS, ids=lambda f: f.__name__.strip("_"))
def test_every_admin_action_is_a_record_of_the_own_chain(cp: ControlPlaneProcess, act: Action) -> None:
    action, resource = act(cp)
    records = [r for r in own_chain(cp, resource=resource) if r["action"] == action]
    assert len(records) == 1, own_chain(cp, resource=resource)
    (record,) = records
    assert record["actor"] == "admin"
    assert record["ip"] == "127.0.0.1"
    assert record["outcome"] == "success"
    assert chain_valid(cp, "controlplane")


def test_an_escalation_names_what_was_granted(cp: ControlPlaneProcess) -> None:
    app = cp.create_app(name="escalate", scopes=["orders:read"], grant_types=["client_credentials"])
    ok(cp.admin("PATCH", f"/v1/oauth/apps/{app['id']}", {"scopes": ["orders:read", "admin:admin"]}))
    (record,) = own_chain(cp, resource=f"app/{app['client_id']}", action="admin.app_updated")
    assert record["metadata"]["fields"] == ["scopes"]
    assert record["metadata"]["added"] == ["admin:admin"]
    assert record["metadata"]["removed"] == []


PII_USERNAMES = [  # (entity the detectors name, what a person might type as a username, with a unique part)
    ("EMAIL_ADDRESS", lambda tag: f"mallory.{tag}@example.com"),
    ("CREDIT_CARD", lambda tag: "4111 1111 1111 1111"),
    ("US_SSN", lambda tag: "078-05-1120"),
    ("PHONE_NUMBER", lambda tag: "+1 415 555 0132"),
]


@pytest.mark.parametrize(("entity", "typed_as"), PII_USERNAMES, ids=[e for e, _ in PII_USERNAMES])
def test_a_failed_sign_in_is_chained_with_the_username_masked(
    cp: ControlPlaneProcess, web_app: dict[str, Any], entity: str, typed_as: Callable[[str], str]
) -> None:
    typed = typed_as(secrets.token_hex(3))
    uri, _ = pkce_session(cp, web_app).create_authorization_url(
        f"{cp.url}/v1/oauth/authorize", code_verifier=secrets.token_urlsafe(48)
    )
    before = len(own_chain(cp, action="token.login_failed", actor=web_app["client_id"]))
    assert sign_in(uri, typed, "not the password!").status_code == 401
    failed = own_chain(cp, action="token.login_failed", actor=web_app["client_id"])
    assert len(failed) == before + 1, "login_failed must reach the own chain"
    assert failed[-1]["metadata"]["subject"] == f"[{entity}]"
    assert typed not in json.dumps(failed)
    assert chain_valid(cp, "controlplane")


# --- retention ---------------------------------------------------------------------------------------------------


def ingest_fresh_chain(cp: ControlPlaneProcess, records: int) -> str:
    """A chain of records written now, shipped as a sidecar ships them."""
    chain = f"fresh-{secrets.token_hex(4)}"
    previous, items = GENESIS_HASH, []
    for seq in range(1, records + 1):
        body = validate_fields({"actor": "svc", "action": "x.y", "outcome": "allow", "timestamp": utc_timestamp()})
        sealed = seal(body, chain, seq, previous)
        items.append(
            {"chain_id": chain, "seq": seq, "record_hash": sealed.record_hash, "canonical": sealed.canonical.decode()}
        )
        previous = sealed.record_hash
        assert hashlib.sha256(sealed.canonical).hexdigest() == sealed.record_hash
    resp = cp.admin("POST", "/api/v1/audit/ingest", {"records": items}, token=cp.chain_credential(chain))
    assert resp.status_code == 200, resp.text
    return chain


def stored_seqs(cp: ControlPlaneProcess, chain: str) -> list[int]:
    return [r["seq"] for r in cp.admin("GET", f"/api/v1/audit?chain_id={chain}&limit=1000").json()["records"]]


def _later_than_the_policy() -> list[str]:
    now = dt.datetime.now(dt.UTC)
    floor = now - dt.timedelta(days=RETENTION_DAYS)
    return [
        "2100-01-01T00:00:00Z",
        now.isoformat(),
        (now - dt.timedelta(days=1)).isoformat(),
        (floor + dt.timedelta(hours=1)).isoformat(),
    ]


@pytest.mark.parametrize("before", _later_than_the_policy())
def test_a_prune_later_than_retention_is_refused_and_cuts_nothing(cp: ControlPlaneProcess, before: str) -> None:
    chain = ingest_fresh_chain(cp, 4)
    resp = cp.admin("POST", "/api/v1/audit/prune", {"before": before})
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["error"] == "retention_violation"
    assert "CORESDK_AUDIT_RETENTION_DAYS" in body["error_description"]
    assert stored_seqs(cp, chain) == [1, 2, 3, 4]
    report = cp.admin("GET", f"/api/v1/audit?verify_chain=true&chain_id={chain}").json()
    assert report["chain_valid"] is True
    assert "pruned_through" not in report["chains"][0]
    assert report["chains"][0]["records_checked"] == 4


def test_prune_input_is_checked(cp: ControlPlaneProcess) -> None:
    for body in ({"before": "yesterday"}, {"before": "2001-01-01T00:00:00"}, {"after": "2001-01-01T00:00:00Z"}):
        resp = cp.admin("POST", "/api/v1/audit/prune", body)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"] == "invalid_request"
    chain = ingest_fresh_chain(cp, 2)
    assert ok(cp.admin("POST", "/api/v1/audit/prune", {}))["retention_days"] == RETENTION_DAYS
    assert stored_seqs(cp, chain) == [1, 2]  # the policy's own cutoff keeps what is younger than retention
