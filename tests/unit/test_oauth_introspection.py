"""Token introspection (RFC 7662) in process (controlplane.oauth.introspection)."""

from __future__ import annotations

import time

import pytest

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants.client_credentials import issue_client_token
from controlplane.oauth.grants.refresh_token import rotate_refresh
from controlplane.oauth.introspection import INTROSPECT_ANY, introspect_token
from controlplane.oauth.revocation import revoke_token
from tests.unit.oauth_harness import Services, jti_of, make_app, token_pair

INACTIVE = {"active": False}


async def test_a_client_sees_its_own_live_access_token(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    body = await introspect_token(svc, app, pair["access_token"], time.time())
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert body["client_id"] == app.client_id and body["jti"] == jti_of(svc, pair["access_token"])
    assert body["iss"] == svc.config.issuer and body["aud"] == svc.config.audience
    assert body["scope"] == "orders:read orders:write" and body["exp"] > body["iat"]
    assert body["tenant_id"] == "acme" and body["roles"] == ["viewer"]


async def test_a_live_refresh_token_is_active_until_used(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    body = await introspect_token(svc, app, pair["refresh_token"], time.time())
    assert body["active"] is True and body["token_type"] == "refresh_token" and body["client_id"] == app.client_id
    await rotate_refresh(svc, app, pair["refresh_token"], None, time.time())
    assert await introspect_token(svc, app, pair["refresh_token"], time.time()) == INACTIVE


async def test_another_clients_token_is_inactive_unless_the_caller_may_introspect_any(svc: Services) -> None:
    app, other = await make_app(svc), await make_app(svc)
    resource_server = await make_app(svc, scopes=(INTROSPECT_ANY,))
    pair = await token_pair(svc, app)
    for token in (pair["access_token"], pair["refresh_token"]):
        assert await introspect_token(svc, other, token, time.time()) == INACTIVE
        assert (await introspect_token(svc, resource_server, token, time.time()))["active"] is True


async def test_revoked_expired_and_unknown_tokens_are_inactive(svc: Services) -> None:
    app = await make_app(svc)
    body = await issue_client_token(svc, app, None, time.time())
    token = body["access_token"]
    assert await introspect_token(svc, app, token, time.time() + body["expires_in"] + 1) == INACTIVE
    pair = await token_pair(svc, app)
    assert (await introspect_token(svc, app, pair["refresh_token"], time.time() + 400 * 86400)) == INACTIVE
    await revoke_token(svc, app, token, None, time.time())
    assert await introspect_token(svc, app, token, time.time()) == INACTIVE
    for garbage in ("", "garbage", "a.b.c", token[:-4] + "AAAA"):
        assert await introspect_token(svc, app, garbage, time.time()) == INACTIVE


async def test_public_clients_may_not_introspect(svc: Services) -> None:
    app = await make_app(svc, confidential=False)
    with pytest.raises(OAuthError) as err:
        await introspect_token(svc, app, "anything", time.time())
    assert (err.value.error, err.value.status) == ("invalid_client", 401)
