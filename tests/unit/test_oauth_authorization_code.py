"""The authorization_code grant's rule in process (controlplane.oauth.grants.authorization_code)."""

from __future__ import annotations

import asyncio
import time

import pytest

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grant_withdrawal import delete_user
from controlplane.oauth.grants.authorization_code import REPLAYED, UNKNOWN, CodeRedemption, redeem_code
from tests.unit.oauth_harness import (
    REDIRECT,
    VERIFIER,
    Services,
    events,
    jti_of,
    make_app,
    make_code,
    make_user,
    redemption,
    revoked_jtis,
    set_app_scopes,
)


async def refused(svc: Services, *args: object) -> str:
    with pytest.raises(OAuthError) as err:
        await redeem_code(svc, *args)  # type: ignore[arg-type]
    assert err.value.error == "invalid_grant"
    return err.value.description


async def test_a_valid_code_issues_a_family_bound_to_client_user_and_scopes(svc: Services) -> None:
    app, user = await make_app(svc), await make_user(svc)
    body = await redeem_code(
        svc, app, redemption(await make_code(svc, app, user, scopes=("orders:read",))), time.time()
    )
    assert body["token_type"] == "Bearer" and body["scope"] == "orders:read" and body["refresh_token"]
    async with svc.store.transaction() as tx:
        refresh = await tx.families.refresh(svc.server_keys.hash_token(body["refresh_token"]))
        assert refresh is not None
        family = await tx.families.family(refresh.family_id)
        access = await tx.tokens.access(jti_of(svc, body["access_token"]))
    assert family is not None and family.client_id == app.client_id and family.subject == user.subject
    assert family.scopes == ("orders:read",)
    assert access is not None and access.family_id == family.id
    [issued] = await events(svc, "issued", app)
    assert issued.family_id == family.id and issued.detail["grant_type"] == "authorization_code"


async def test_no_refresh_token_without_the_refresh_grant(svc: Services) -> None:
    app, user = await make_app(svc, grant_types=("authorization_code",)), await make_user(svc)
    body = await redeem_code(svc, app, redemption(await make_code(svc, app, user)), time.time())
    assert "refresh_token" not in body and body["access_token"]


async def test_a_code_is_single_use_and_its_replay_revokes_what_it_issued(svc: Services) -> None:
    app, user = await make_app(svc), await make_user(svc)
    code = await make_code(svc, app, user)
    body = await redeem_code(svc, app, redemption(code), time.time())
    assert await refused(svc, app, redemption(code), time.time()) == REPLAYED
    assert jti_of(svc, body["access_token"]) in await revoked_jtis(svc)
    async with svc.store.transaction() as tx:
        refresh = await tx.families.refresh(svc.server_keys.hash_token(body["refresh_token"]))
        assert refresh is not None
        family = await tx.families.family(refresh.family_id)
    assert family is not None and family.revoked_reason == "code_replay"
    [alert] = await events(svc, "code_replay", app)
    assert alert.family_id == family.id


async def test_concurrent_redemptions_issue_exactly_once(svc: Services) -> None:
    app, user = await make_app(svc), await make_user(svc)
    code = await make_code(svc, app, user)
    results = await asyncio.gather(
        *(redeem_code(svc, app, redemption(code), time.time()) for _ in range(4)), return_exceptions=True
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, OAuthError) and r.description == REPLAYED for r in results if not isinstance(r, dict))


async def test_an_unknown_code_is_invalid(svc: Services) -> None:
    app = await make_app(svc)
    assert await refused(svc, app, redemption("no-such-code"), time.time()) == UNKNOWN


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("client", "the code was issued to another client"),
        ("redirect", "redirect_uri does not match the authorization request"),
        ("expired", "the code has expired"),
        ("verifier", "PKCE verification failed"),
        ("malformed_verifier", "PKCE verification failed"),
    ],
)
async def test_a_refused_code_stays_burned(svc: Services, change: str, reason: str) -> None:
    app, other, user = await make_app(svc), await make_app(svc), await make_user(svc)
    code = await make_code(svc, app, user)
    now = time.time()
    attempt = {
        "client": (other, redemption(code), now),
        "redirect": (app, redemption(code, redirect_uri=REDIRECT + "/x"), now),
        "expired": (app, redemption(code), now + 61),
        "verifier": (app, redemption(code, verifier="w" * 43), now),
        "malformed_verifier": (app, redemption(code, verifier="short"), now),
    }[change]
    assert await refused(svc, *attempt) == reason
    # the rightful exchange afterwards finds the code used: a refused attempt may have been the attacker's
    assert await refused(svc, app, redemption(code), now) == REPLAYED


async def test_withdrawn_scopes_are_not_issued_and_a_code_with_none_left_is_refused(svc: Services) -> None:
    app, user = await make_app(svc), await make_user(svc)
    partly, wholly = await make_code(svc, app, user), await make_code(svc, app, user, scopes=("orders:write",))
    narrowed = await set_app_scopes(svc, app, ("orders:read",))
    body = await redeem_code(svc, narrowed, redemption(partly), time.time())
    assert body["scope"] == "orders:read"
    reason = await refused(svc, narrowed, redemption(wholly), time.time())
    assert reason == "none of the scopes of this code is still allowed for this client"


async def test_a_deleted_users_code_issues_nothing(svc: Services) -> None:
    app, user = await make_app(svc), await make_user(svc)
    code = await make_code(svc, app, user)
    # the code survives deletion only if written after it (a race): redemption must still refuse
    await delete_user(svc.store, user, time.time())
    late = await make_code(svc, app, user)
    assert await refused(svc, app, redemption(code), time.time()) == UNKNOWN  # burned by the deletion
    assert await refused(svc, app, redemption(late), time.time()) == "the user of this code no longer exists"


@pytest.mark.parametrize("missing", ["code", "redirect_uri", "code_verifier"])
def test_the_form_must_name_code_redirect_and_verifier(missing: str) -> None:
    form = {"code": "c", "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    del form[missing]
    with pytest.raises(OAuthError) as err:
        CodeRedemption.from_form(form)
    assert (err.value.error, err.value.description) == ("invalid_request", f"{missing} is required")
