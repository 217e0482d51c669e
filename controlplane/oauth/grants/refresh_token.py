"""The refresh_token grant (RFC 6749 §6, OAuth 2.0 Security BCP §4.14): one-time refresh tokens in families.

Each use rotates: the presented token is consumed (compare-and-set) and a successor pair is issued, in one
transaction. The rule, in order:
- the token must be known and bound to the presenting client, and its family not revoked;
- a token used before is a replay, and revokes the whole family (every access token of it joins the revocation
  feed) — except a retry inside the grace window (CORESDK_REFRESH_GRACE), which gets the same successor pair
  again, sealed under a key bound to the presented token;
- past its idle or absolute expiry it is refused;
- the successor carries only the scopes the app still allows (none left: refused, nothing consumed), narrowed
  further by a `scope` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants.scopes import requested_scopes, still_allowed
from controlplane.oauth.services import OAuthServices
from controlplane.store.models import AccessRecord, OAuthApp, RefreshRecord, TokenFamily
from controlplane.store.store import StoreTx

UNKNOWN = "unknown refresh token"
OTHER_CLIENT = "refresh token was issued to another client"
REVOKED = "refresh token has been revoked"
REPLAYED = "refresh token reuse detected"
EXPIRED = "refresh token has expired"
NO_SCOPES_LEFT = "none of the scopes of this grant is still allowed for this client"


@dataclass(frozen=True)
class Rotated:
    """The sealed successor response (new or, inside the grace window, the one issued before)."""

    blob: str


def _judge_used(record: RefreshRecord, now: float, grace_seconds: int) -> Rotated | None:
    """A used token inside the grace window gets its successor again; otherwise None (a replay)."""
    used_at, blob = record.used_at, record.successor_blob
    if grace_seconds and used_at is not None and now - used_at <= grace_seconds and blob:
        return Rotated(blob)
    return None


def _successor(
    svc: OAuthServices, app: OAuthApp, family: TokenFamily, scope: str | None, presented_hash: str, now: float
) -> tuple[RefreshRecord, AccessRecord, str]:
    remaining = still_allowed(family.scopes, app)
    if not remaining:  # raised inside the transaction: nothing is consumed or issued
        raise OAuthError("invalid_grant", NO_SCOPES_LEFT)
    access = svc.issuer.for_family(family, now, requested_scopes(scope, remaining))
    raw, record = svc.issuer.refresh(family, now)
    blob = svc.issuer.seal_response(svc.issuer.response(access, raw), presented_hash)
    return record, access.record, blob


async def _rotate(
    svc: OAuthServices,
    tx: StoreTx,
    app: OAuthApp,
    presented_hash: str,
    scope: str | None,
    now: float,
    ip: str,
) -> Rotated | str:
    grace = svc.config.refresh_grace_seconds
    for _ in range(2):
        record = await tx.families.refresh(presented_hash)
        if record is None:
            return UNKNOWN
        family = await tx.families.family_locked(record.family_id)
        assert family is not None  # refresh_tokens.family_id references token_families
        if family.client_id != app.client_id:
            return OTHER_CLIENT
        if family.revoked_at is not None:
            return REVOKED
        if record.used_at is not None:
            again = _judge_used(record, now, grace)
            if again is not None:
                return again
            await tx.families.revoke_family(family.id, "refresh_replay", now)
            await tx.events.record(
                "refresh_replay", now, client_id=app.client_id, subject=family.subject, family_id=family.id, ip=ip
            )
            return REPLAYED
        if now >= record.idle_expires_at or now >= family.absolute_expires_at:
            return EXPIRED
        new_refresh, access, blob = _successor(svc, app, family, scope, presented_hash, now)
        if not await tx.families.rotate_refresh_if_current(presented_hash, now, blob if grace else None):
            continue  # lost a race to a concurrent rotation: re-read and judge as a reuse
        await tx.families.insert_refresh(new_refresh)
        await tx.tokens.insert_access(access)
        await tx.events.record(
            "refreshed",
            now,
            client_id=app.client_id,
            subject=family.subject,
            family_id=family.id,
            ip=ip,
            detail={"jti": access.jti},
        )
        return Rotated(blob)
    return "concurrent rotation"


async def rotate_refresh(
    svc: OAuthServices, app: OAuthApp, presented: str, scope: str | None, now: float, ip: str = ""
) -> dict[str, Any]:
    """The successor token response; OAuthError invalid_grant (after committing a replay's revocation) otherwise."""
    presented_hash = svc.server_keys.hash_token(presented)
    async with svc.store.transaction() as tx:
        outcome = await _rotate(svc, tx, app, presented_hash, scope, now, ip)
    if isinstance(outcome, str):
        raise OAuthError("invalid_grant", outcome)
    return svc.issuer.open_response(outcome.blob, presented_hash)
