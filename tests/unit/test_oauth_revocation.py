"""Token revocation (RFC 7009) in process (controlplane.oauth.revocation)."""

from __future__ import annotations

import time

import pytest

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants import refresh_token as refresh_rule
from controlplane.oauth.grants.client_credentials import issue_client_token
from controlplane.oauth.grants.refresh_token import rotate_refresh
from controlplane.oauth.revocation import revoke_token
from tests.unit.oauth_harness import Services, events, jti_of, make_app, revoked_jtis, token_pair


async def rotation_refused(svc: Services, *args: object) -> str:
    with pytest.raises(OAuthError) as err:
        await rotate_refresh(svc, *args)  # type: ignore[arg-type]
    return err.value.description


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"])
async def test_a_refresh_token_revokes_its_family_and_every_access_token_of_it(svc: Services, hint: str | None) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    await revoke_token(svc, app, pair["refresh_token"], hint, time.time())
    assert jti_of(svc, pair["access_token"]) in await revoked_jtis(svc)
    assert await rotation_refused(svc, app, pair["refresh_token"], None, time.time()) == refresh_rule.REVOKED
    [event] = await events(svc, "revoked", app)
    assert event.detail == {"reason": "revoked", "access_tokens": 1}


@pytest.mark.parametrize("hint", [None, "access_token"])
async def test_an_access_token_of_a_family_revokes_itself_and_its_family(svc: Services, hint: str | None) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    await revoke_token(svc, app, pair["access_token"], hint, time.time())
    assert jti_of(svc, pair["access_token"]) in await revoked_jtis(svc)
    assert await rotation_refused(svc, app, pair["refresh_token"], None, time.time()) == refresh_rule.REVOKED


async def test_a_client_credentials_token_joins_the_revocation_feed(svc: Services) -> None:
    app = await make_app(svc)
    body = await issue_client_token(svc, app, None, time.time())
    await revoke_token(svc, app, body["access_token"], None, time.time())
    assert jti_of(svc, body["access_token"]) in await revoked_jtis(svc)
    [event] = await events(svc, "revoked", app)
    assert event.detail == {"jti": jti_of(svc, body["access_token"])}


async def test_another_clients_tokens_and_unknown_tokens_change_nothing(svc: Services) -> None:
    app, other = await make_app(svc), await make_app(svc)
    pair = await token_pair(svc, app)
    before = await revoked_jtis(svc)
    for token in (pair["refresh_token"], pair["access_token"], "garbage", "a.b.c"):
        await revoke_token(svc, other, token, None, time.time())  # no error: the endpoint reveals nothing
    assert await revoked_jtis(svc) == before
    assert await events(svc, "revoked", app) == [] and await events(svc, "revoked", other) == []
    assert await rotate_refresh(svc, app, pair["refresh_token"], None, time.time())


async def test_revoking_twice_records_once(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    await revoke_token(svc, app, pair["refresh_token"], None, time.time())
    await revoke_token(svc, app, pair["refresh_token"], None, time.time())
    assert len(await events(svc, "revoked", app)) == 1
