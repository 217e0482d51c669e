"""The authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is redeemed once, by its own client.

In one transaction: the code is marked used (compare-and-set), then judged — same client, same redirect_uri, not
expired, PKCE verifier matching, some scope still allowed, user still there — and only then a family is created
and its tokens issued. A refused code stays burned. A code presented a second time revokes the family it issued
(RFC 6749 §4.1.2: the code may have been stolen) and is recorded as an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.oauth import pkce
from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants.scopes import still_allowed
from controlplane.oauth.services import OAuthServices
from controlplane.secrets import new_id
from controlplane.store.families import subject_lock
from controlplane.store.models import AuthCode, OAuthApp, TokenFamily
from controlplane.store.store import StoreTx

REPLAYED = "authorization code was already used; tokens issued from it are revoked"
UNKNOWN = "authorization code is invalid"


@dataclass(frozen=True)
class CodeRedemption:
    code: str
    redirect_uri: str
    code_verifier: str

    @classmethod
    def from_form(cls, form: dict[str, str]) -> CodeRedemption:
        for name in ("code", "redirect_uri", "code_verifier"):
            if name not in form:
                raise OAuthError("invalid_request", f"{name} is required")
        return cls(form["code"], form["redirect_uri"], form["code_verifier"])


def refusal(code: AuthCode, app: OAuthApp, request: CodeRedemption, now: float) -> str | None:
    """Why this (just consumed) code may not be exchanged by app for this request, or None."""
    if code.client_id != app.client_id:
        return "the code was issued to another client"
    if code.redirect_uri != request.redirect_uri:
        return "redirect_uri does not match the authorization request"
    if now >= code.expires_at:
        return "the code has expired"
    if not pkce.verify(request.code_verifier, code.code_challenge):
        return "PKCE verification failed"
    if not still_allowed(code.scopes, app):
        return "none of the scopes of this code is still allowed for this client"
    return None


async def _replayed(tx: StoreTx, code_hash: str, now: float, ip: str) -> str:
    old = await tx.codes.code(code_hash)
    if old is None:
        return UNKNOWN
    if old.family_id:
        await tx.families.revoke_family(old.family_id, "code_replay", now)
    await tx.events.record(
        "code_replay", now, client_id=old.client_id, subject=old.subject, family_id=old.family_id or "", ip=ip
    )
    return REPLAYED


async def _redeem(
    svc: OAuthServices, tx: StoreTx, app: OAuthApp, request: CodeRedemption, code_hash: str, now: float, ip: str
) -> dict[str, Any] | str:
    code = await tx.codes.mark_code_used_if_unused(code_hash, now)
    if code is None:
        return await _replayed(tx, code_hash, now, ip)
    refused = refusal(code, app, request, now)
    if refused is not None:
        return refused
    await tx.serialize(subject_lock(code.subject))  # with user deletion: a deleted user's code issues nothing
    if await tx.users.user_by_subject(code.subject) is None:
        return "the user of this code no longer exists"
    family = TokenFamily(
        id=new_id("fam"),
        client_id=app.client_id,
        subject=code.subject,
        tenant_id=code.tenant_id,
        roles=code.roles,
        scopes=still_allowed(code.scopes, app),
        created_at=now,
        absolute_expires_at=now + svc.config.refresh_absolute_ttl,
    )
    access = svc.issuer.for_family(family, now)
    refresh_raw = None
    await tx.families.insert_family(family)
    if "refresh_token" in app.grant_types:
        refresh_raw, refresh = svc.issuer.refresh(family, now)
        await tx.families.insert_refresh(refresh)
    await tx.tokens.insert_access(access.record)
    await tx.codes.link_family(code_hash, family.id)
    await tx.events.record(
        "issued",
        now,
        client_id=code.client_id,
        subject=code.subject,
        family_id=family.id,
        ip=ip,
        detail={"grant_type": "authorization_code", "jti": access.record.jti},
    )
    return svc.issuer.response(access, refresh_raw)


async def redeem_code(
    svc: OAuthServices, app: OAuthApp, request: CodeRedemption, now: float, ip: str = ""
) -> dict[str, Any]:
    """The token response for a valid code; OAuthError invalid_grant (after committing the burn) otherwise."""
    code_hash = svc.server_keys.hash_token(request.code)
    async with svc.store.transaction() as tx:
        outcome = await _redeem(svc, tx, app, request, code_hash, now, ip)
    if isinstance(outcome, str):
        raise OAuthError("invalid_grant", outcome)
    return outcome
