"""The client_credentials grant (RFC 6749 §4.4): a confidential client gets a token for itself, no refresh.

The subject is the client; the scopes are those requested, within the app's (absent: all of them). The token is
recorded with its "issued" event before the response leaves, group-committed with concurrent issuances (one
transaction, one fsync, for many requests: the store's GroupCommit). The record (jti, times) is known before the
signature, so the token is recorded while it is being signed; it leaves only when both are done, and a failed
record means no token (a failed signature after a stored record only over-reports: nothing was handed out).
"""

from __future__ import annotations

from typing import Any

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants.scopes import requested_scopes
from controlplane.oauth.services import OAuthServices
from controlplane.store.models import OAuthApp


async def issue_client_token(
    svc: OAuthServices, app: OAuthApp, scope: str | None, now: float, ip: str = ""
) -> dict[str, Any]:
    if not app.confidential:
        raise OAuthError("unauthorized_client", "client_credentials requires a confidential client")
    scopes = requested_scopes(scope, app.scopes)
    pending = await svc.issuer.begin_access(
        client_id=app.client_id,
        subject=app.client_id,
        scopes=scopes,
        tenant_id=app.tenant_id,
        roles=(),
        family_id=None,
        now=now,
    )
    try:
        await svc.store.record_access(pending.record, ip, "client_credentials")
    except BaseException:
        pending.abandon()
        raise
    access = await pending.signed()
    return svc.issuer.response(access, None)
