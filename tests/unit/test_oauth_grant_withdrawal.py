"""Withdrawing grants in process (controlplane.oauth.grant_withdrawal): narrowed apps, deleted apps and users."""

from __future__ import annotations

import dataclasses
import time

from controlplane.oauth.grant_withdrawal import delete_app, delete_user, update_app
from controlplane.oauth.grants.authorization_code import redeem_code
from controlplane.oauth.grants.client_credentials import issue_client_token
from controlplane.store.models import TokenFamily
from tests.unit.oauth_harness import (
    Services,
    events,
    jti_of,
    make_app,
    make_code,
    make_user,
    redemption,
    revoked_jtis,
    token_pair,
)


async def family_of(svc: Services, refresh_token: str) -> TokenFamily:
    async with svc.store.transaction() as tx:
        record = await tx.families.refresh(svc.server_keys.hash_token(refresh_token))
        assert record is not None
        family = await tx.families.family(record.family_id)
    assert family is not None
    return family


async def test_narrowing_an_app_narrows_its_families_and_revokes_what_holds_a_withdrawn_scope(svc: Services) -> None:
    app = await make_app(svc)
    both = await token_pair(svc, app)
    user = await make_user(svc)
    write_only = await redeem_code(
        svc, app, redemption(await make_code(svc, app, user, scopes=("orders:write",))), time.time()
    )
    service = await issue_client_token(svc, app, "orders:read", time.time())
    narrowed = dataclasses.replace(app, scopes=("orders:read",), updated_at=time.time())
    await update_app(svc.store, narrowed, ("scopes",), time.time())

    assert (await family_of(svc, both["refresh_token"])).scopes == ("orders:read",)
    assert (await family_of(svc, write_only["refresh_token"])).revoked_reason == "scopes_withdrawn"
    revoked = await revoked_jtis(svc)
    assert {jti_of(svc, both["access_token"]), jti_of(svc, write_only["access_token"])} <= revoked
    assert jti_of(svc, service["access_token"]) not in revoked  # it never held the withdrawn scope
    [summary] = await events(svc, "app_scopes_narrowed", app)
    assert summary.detail == {
        "removed": ["orders:write"],
        "families_narrowed": 1,
        "families_revoked": 1,
        "access_tokens_revoked": 1,  # the narrowed family's token carried orders:write (the other went with its family)
    }


async def test_deleting_an_app_revokes_every_token_it_holds(svc: Services) -> None:
    app = await make_app(svc)
    pair, service = await token_pair(svc, app), await issue_client_token(svc, app, None, time.time())
    await delete_app(svc.store, app, time.time())
    assert {jti_of(svc, pair["access_token"]), jti_of(svc, service["access_token"])} <= await revoked_jtis(svc)
    assert (await family_of(svc, pair["refresh_token"])).revoked_reason == "app_deleted"
    async with svc.store.transaction() as tx:
        assert await tx.apps.app_by_id(app.id) is None


async def test_deleting_a_user_burns_pending_codes_and_revokes_families(svc: Services) -> None:
    app, user = await make_app(svc), await make_user(svc)
    pair = await token_pair(svc, app, user)
    await make_code(svc, app, user)
    await delete_user(svc.store, user, time.time())
    assert (await family_of(svc, pair["refresh_token"])).revoked_reason == "user_deleted"
    assert jti_of(svc, pair["access_token"]) in await revoked_jtis(svc)
    all_deleted = await svc.store.events.list_events("user_deleted", None, None, None, 1000)
    [deleted] = [e for e in all_deleted if e.subject == user.subject]
    assert deleted.detail == {"codes_burned": 1, "families_revoked": 1}
