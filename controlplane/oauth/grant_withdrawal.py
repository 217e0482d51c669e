"""Withdrawing grants when an administrator narrows an app, deletes it, or deletes a user.

Each change and its consequences are one transaction, so no grant outlives the change by a refresh or a TTL:
- scopes removed from an app are removed from every live family of it (a family left with none is revoked), and
  live access tokens carrying a removed scope are revoked (they reach sidecars through the revocation feed);
- a deleted app takes every family and access token with it;
- a deleted user's pending codes are burned and families revoked, serialised with code redemption on the subject,
  so a code being exchanged at that moment either finds the user gone or its new family is seen here.
"""

from __future__ import annotations

from controlplane.oauth.revocation import revoke_family_recorded
from controlplane.store.families import subject_lock
from controlplane.store.models import OAuthApp, User
from controlplane.store.store import Store, StoreTx
from controlplane.store.tokens import REVOCATIONS_LOCK


async def _withdraw_scopes(tx: StoreTx, app: OAuthApp, removed: tuple[str, ...], now: float, ip: str) -> None:
    await tx.serialize(REVOCATIONS_LOCK)
    narrowed = revoked = 0
    for family in await tx.families.live_families_of_client(app.client_id):
        if not any(s in removed for s in family.scopes):
            continue
        remaining = tuple(s for s in family.scopes if s in app.scopes)
        if remaining:
            await tx.families.set_scopes(family.id, remaining)
            narrowed += 1
        else:
            await revoke_family_recorded(tx, family.id, app.client_id, "scopes_withdrawn", now, ip)
            revoked += 1
    jtis = await tx.tokens.revoke_live_of_client(app.client_id, now, holding_any_of=removed)
    await tx.events.app_event(
        "app_scopes_narrowed",
        app,
        now,
        ip,
        {
            "removed": list(removed),
            "families_narrowed": narrowed,
            "families_revoked": revoked,
            "access_tokens_revoked": len(jtis),
        },
    )


async def update_app(store: Store, app: OAuthApp, changed: tuple[str, ...], now: float, ip: str = "") -> None:
    """Apply an admin PATCH; scopes it withdraws are withdrawn from every grant the app holds, in the same step."""
    async with store.transaction() as tx:
        before = await tx.apps.update_app(app)
        removed = tuple(s for s in before if s not in app.scopes)
        added = tuple(s for s in app.scopes if s not in before)
        await tx.events.app_event(
            "app_updated",
            app,
            now,
            ip,
            {"fields": list(changed), "scopes": list(app.scopes), "added": list(added), "removed": list(removed)},
        )
        if removed:
            await _withdraw_scopes(tx, app, removed, now, ip)


async def delete_app(store: Store, app: OAuthApp, now: float, ip: str = "") -> None:
    """Delete the app and revoke every token it holds."""
    async with store.transaction() as tx:
        families = await tx.families.live_families_of_client(app.client_id)
        for family in families:
            await tx.families.revoke_family(family.id, "app_deleted", now)
        await tx.tokens.revoke_live_of_client(app.client_id, now)
        await tx.apps.delete_app(app)
        await tx.events.app_event("app_deleted", app, now, ip, {"families_revoked": len(families)})


async def delete_user(store: Store, user: User, now: float, ip: str = "") -> None:
    """Delete the user and everything it could still redeem: pending codes are burned, families revoked."""
    async with store.transaction() as tx:
        await tx.serialize(subject_lock(user.subject))
        burned = await tx.codes.burn_unused_of_subject(user.subject)
        families = await tx.families.live_families_of_subject(user.subject)
        for family in families:
            await revoke_family_recorded(tx, family.id, family.client_id, "user_deleted", now, ip, user.subject)
        await tx.users.delete_user(user)
        await tx.events.record(
            "user_deleted",
            now,
            subject=user.subject,
            ip=ip,
            admin=True,
            resource=f"user/{user.id}",
            detail={"codes_burned": burned, "families_revoked": len(families)},
        )
