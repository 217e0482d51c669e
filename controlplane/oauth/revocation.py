"""Token revocation (RFC 7009 §2.1), the rule behind POST /v1/oauth/revoke and /v1/oauth/logout.

A refresh token revokes its whole family and every access token of it; an access token is revoked itself (its
jti joins the feed sidecars poll) and, when it belongs to a family, the family with it. A client revokes only
its own tokens; unknown or foreign tokens change nothing and are not told apart (the endpoint answers 200).
The hint only orders the lookups (§2.1: the server may ignore it).
"""

from __future__ import annotations

from controlplane.oauth.services import OAuthServices
from controlplane.oauth.tokens_lookup import find_access, find_refresh
from controlplane.store.models import OAuthApp
from controlplane.store.store import StoreTx

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


async def revoke_family_recorded(
    tx: StoreTx, family_id: str, client_id: str, reason: str, now: float, ip: str, subject: str = ""
) -> None:
    """Revoke a family with its access tokens, and record a "revoked" event saying why and how many."""
    jtis = await tx.families.revoke_family(family_id, reason, now)
    detail = {"reason": reason, "access_tokens": len(jtis)}
    await tx.events.record(
        "revoked", now, client_id=client_id, subject=subject, family_id=family_id, ip=ip, detail=detail
    )


async def revoke_token(
    svc: OAuthServices, app: OAuthApp, token: str, hint: str | None, now: float, ip: str = ""
) -> None:
    order = ("access_token", "refresh_token") if hint == "access_token" else ("refresh_token", "access_token")
    async with svc.store.transaction() as tx:
        for kind in order:
            if kind == "refresh_token":
                refresh = await find_refresh(svc, tx, token)
                if refresh is None:
                    continue
                if refresh.family.client_id == app.client_id and refresh.family.revoked_at is None:
                    await revoke_family_recorded(tx, refresh.family.id, app.client_id, "revoked", now, ip)
                return
            found = await find_access(svc, tx, token)
            if found is None:
                continue
            access = found.record
            if access.client_id == app.client_id:
                if access.family_id:
                    await revoke_family_recorded(tx, access.family_id, app.client_id, "revoked", now, ip)
                await tx.tokens.revoke_jti(access.jti, now)
                await tx.events.record(
                    "revoked",
                    now,
                    client_id=access.client_id,
                    subject=access.subject,
                    family_id=access.family_id or "",
                    ip=ip,
                    detail={"jti": access.jti},
                )
            return
