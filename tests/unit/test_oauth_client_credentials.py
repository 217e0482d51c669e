"""The client_credentials grant's rule in process (controlplane.oauth.grants.client_credentials)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants.client_credentials import issue_client_token
from controlplane.oauth.issue import PendingAccess
from controlplane.store.db import StoreUnavailable
from tests.unit.oauth_harness import Services, events, jti_of, make_app


async def test_a_public_client_may_not_use_it(svc: Services) -> None:
    app = await make_app(svc, confidential=False)
    with pytest.raises(OAuthError) as err:
        await issue_client_token(svc, app, None, time.time())
    assert err.value.error == "unauthorized_client"
    assert await events(svc, "issued", app) == []


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        (None, "orders:read orders:write"),
        ("", "orders:read orders:write"),
        ("orders:write orders:write", "orders:write"),
    ],
)
async def test_scopes_default_to_the_apps_and_may_be_narrowed(svc: Services, scope: str | None, granted: str) -> None:
    app = await make_app(svc)
    body = await issue_client_token(svc, app, scope, time.time())
    assert body["scope"] == granted and "refresh_token" not in body


async def test_scopes_beyond_the_apps_are_refused_and_nothing_is_recorded(svc: Services) -> None:
    app = await make_app(svc)
    with pytest.raises(OAuthError) as err:
        await issue_client_token(svc, app, "orders:read admin:all", time.time())
    assert err.value.error == "invalid_scope" and "admin:all" in err.value.description
    assert await events(svc, "issued", app) == []


async def test_every_concurrent_token_is_recorded_with_its_event_before_it_is_returned(svc: Services) -> None:
    app = await make_app(svc)
    bodies = await asyncio.gather(*(issue_client_token(svc, app, None, time.time(), "203.0.113.9") for _ in range(20)))
    jtis = {jti_of(svc, b["access_token"]) for b in bodies}
    async with svc.store.transaction() as tx:
        records = [await tx.tokens.access(j) for j in jtis]
    assert all(r is not None and r.family_id is None and r.subject == app.client_id for r in records)
    issued = await events(svc, "issued", app)
    assert {e.detail["jti"] for e in issued} == jtis and len(jtis) == 20
    assert {(e.detail["grant_type"], e.ip) for e in issued} == {("client_credentials", "203.0.113.9")}


async def test_the_record_made_before_the_signature_matches_the_signed_token(svc: Services) -> None:
    app = await make_app(svc)
    body = await issue_client_token(svc, app, "orders:read", 1_700_000_000.7)
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    async with svc.store.transaction() as tx:
        record = await tx.tokens.access(claims["jti"])
    assert record is not None and record.client_id == claims["client_id"] == app.client_id
    assert (record.issued_at, record.expires_at) == (claims["iat"], claims["exp"]) == (1_700_000_000, claims["exp"])
    assert record.scopes == ("orders:read",) and body["expires_in"] == claims["exp"] - claims["iat"]


async def test_a_token_whose_record_fails_is_never_handed_out(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    app = await make_app(svc)
    started: list[PendingAccess] = []
    begin = svc.issuer.begin_access

    async def spy(**kwargs: Any) -> PendingAccess:
        started.append(await begin(**kwargs))
        return started[-1]

    async def unavailable(*_: Any) -> None:
        raise StoreUnavailable("disk gone")

    monkeypatch.setattr(svc.issuer, "begin_access", spy)
    monkeypatch.setattr(svc.store, "record_access", unavailable)
    with pytest.raises(StoreUnavailable):
        await issue_client_token(svc, app, None, time.time())
    assert len(started) == 1 and started[0].signing.done()  # abandoned: nobody waits for that signature
    assert await events(svc, "issued", app) == []
