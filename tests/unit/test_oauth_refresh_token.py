"""The refresh_token grant's rule in process (controlplane.oauth.grants.refresh_token): rotation with client
binding, the grace window, replay revoking the family, expiry, withdrawn scopes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants import refresh_token as rule
from controlplane.oauth.grants.refresh_token import rotate_refresh
from controlplane.store.models import RefreshRecord, TokenFamily
from tests.unit.oauth_harness import Services, events, jti_of, make_app, revoked_jtis, set_app_scopes, token_pair


async def refused(svc: Services, *args: Any, error: str = "invalid_grant") -> str:
    with pytest.raises(OAuthError) as err:
        await rotate_refresh(svc, *args)
    assert err.value.error == error
    return err.value.description


async def lookup(svc: Services, refresh_token: str) -> tuple[RefreshRecord, TokenFamily]:
    async with svc.store.transaction() as tx:
        record = await tx.families.refresh(svc.server_keys.hash_token(refresh_token))
        assert record is not None
        family = await tx.families.family(record.family_id)
    assert family is not None
    return record, family


async def test_rotation_consumes_the_token_and_issues_a_successor_pair_in_the_same_family(svc: Services) -> None:
    app = await make_app(svc)
    first = await token_pair(svc, app)
    second = await rotate_refresh(svc, app, first["refresh_token"], None, time.time())
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    old, family = await lookup(svc, first["refresh_token"])
    new, same = await lookup(svc, second["refresh_token"])
    assert old.used_at is not None and old.successor_blob is None  # no grace window: nothing kept to replay
    assert new.used_at is None and same.id == family.id
    [refreshed] = await events(svc, "refreshed", app)
    assert refreshed.detail["jti"] == jti_of(svc, second["access_token"])


async def test_another_client_cannot_use_the_token_and_consumes_nothing(svc: Services) -> None:
    app, thief = await make_app(svc), await make_app(svc)
    pair = await token_pair(svc, app)
    assert await refused(svc, thief, pair["refresh_token"], None, time.time()) == rule.OTHER_CLIENT
    record, family = await lookup(svc, pair["refresh_token"])
    assert record.used_at is None and family.revoked_at is None
    assert await rotate_refresh(svc, app, pair["refresh_token"], None, time.time())


async def test_a_replayed_token_revokes_the_whole_family(svc: Services) -> None:
    app = await make_app(svc)
    first = await token_pair(svc, app)
    second = await rotate_refresh(svc, app, first["refresh_token"], None, time.time())
    assert await refused(svc, app, first["refresh_token"], None, time.time()) == rule.REPLAYED
    _, family = await lookup(svc, first["refresh_token"])
    assert family.revoked_reason == "refresh_replay"
    assert {jti_of(svc, first["access_token"]), jti_of(svc, second["access_token"])} <= await revoked_jtis(svc)
    assert await refused(svc, app, second["refresh_token"], None, time.time()) == rule.REVOKED
    [alert] = await events(svc, "refresh_replay", app)
    assert alert.family_id == family.id


async def test_concurrent_rotations_of_one_token_succeed_once_and_the_family_is_revoked(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    results = await asyncio.gather(
        *(rotate_refresh(svc, app, pair["refresh_token"], None, time.time()) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    losers = {r.description for r in results if isinstance(r, OAuthError)}
    assert rule.REPLAYED in losers and losers <= {rule.REPLAYED, rule.REVOKED}  # later ones find it revoked
    _, family = await lookup(svc, pair["refresh_token"])
    assert family.revoked_reason == "refresh_replay"


async def test_a_retry_inside_the_grace_window_gets_the_same_successor_and_after_it_is_a_replay(svc: Services) -> None:
    graced = svc.with_config(refresh_grace_seconds=30)
    app = await make_app(graced)
    pair = await token_pair(graced, app)
    now = time.time()
    first = await rotate_refresh(graced, app, pair["refresh_token"], None, now)
    assert await rotate_refresh(graced, app, pair["refresh_token"], None, now + 30) == first
    assert await refused(graced, app, pair["refresh_token"], None, now + 31) == rule.REPLAYED
    # the grace window is a setting: without it the same retry is a replay at once
    other = await token_pair(graced, app)
    await rotate_refresh(graced, app, other["refresh_token"], None, now)
    assert await refused(svc, app, other["refresh_token"], None, now + 1) == rule.REPLAYED


async def test_idle_and_absolute_expiry(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    record, family = await lookup(svc, pair["refresh_token"])
    assert await refused(svc, app, pair["refresh_token"], None, record.idle_expires_at) == rule.EXPIRED
    assert record.idle_expires_at <= family.absolute_expires_at
    short = svc.with_config(refresh_absolute_ttl=600, refresh_idle_ttl=300)
    pair = await token_pair(short, app)
    now = time.time()
    for step in (1, 2):  # each rotation renews the idle expiry, never past the family's absolute one
        pair = await rotate_refresh(short, app, pair["refresh_token"], None, now + 250 * step)
    record, family = await lookup(short, pair["refresh_token"])
    assert record.idle_expires_at == family.absolute_expires_at
    assert await refused(short, app, pair["refresh_token"], None, family.absolute_expires_at) == rule.EXPIRED
    record, _ = await lookup(svc, pair["refresh_token"])
    assert record.used_at is None  # an expired token is refused, not consumed


async def test_the_successor_carries_only_scopes_still_allowed_and_none_left_consumes_nothing(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    narrowed = await set_app_scopes(svc, app, ("orders:read",))
    pair = await rotate_refresh(svc, narrowed, pair["refresh_token"], None, time.time())
    assert pair["scope"] == "orders:read"
    emptied = await set_app_scopes(svc, app, ("billing:read",))
    assert await refused(svc, emptied, pair["refresh_token"], None, time.time()) == rule.NO_SCOPES_LEFT
    record, _ = await lookup(svc, pair["refresh_token"])
    assert record.used_at is None


async def test_the_scope_parameter_narrows_but_never_widens(svc: Services) -> None:
    app = await make_app(svc)
    pair = await token_pair(svc, app)
    pair = await rotate_refresh(svc, app, pair["refresh_token"], "orders:read", time.time())
    assert pair["scope"] == "orders:read"
    wider = "orders:read admin:all"
    assert (await refused(svc, app, pair["refresh_token"], wider, time.time(), error="invalid_scope")).startswith(
        "scope exceeds"
    )
    record, _ = await lookup(svc, pair["refresh_token"])
    assert record.used_at is None


async def test_an_unknown_token_is_refused(svc: Services) -> None:
    app = await make_app(svc)
    assert await refused(svc, app, "not-a-token", None, time.time()) == rule.UNKNOWN
