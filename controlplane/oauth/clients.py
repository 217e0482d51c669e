"""Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3).

client_secret_basic and client_secret_post for confidential clients; public clients identify with client_id and
present no secret. Using two methods at once is refused. Secrets are compared as keyed hashes in constant time;
rotated-out secrets stop working when their grace expiry passes.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from urllib.parse import unquote_plus

from aiohttp import web

from controlplane.oauth.errors import OAuthError
from controlplane.secrets import ServerKeys
from controlplane.store.models import OAuthApp
from controlplane.store.store import Store


def _invalid_client(basic: bool, description: str = "client authentication failed") -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="coresdk"'} if basic else {}
    return OAuthError("invalid_client", description, status=401, headers=headers)


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError("invalid_request", "unsupported Authorization scheme", status=400)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client(True, "malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client(True, "malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(
    request: web.Request, form: dict[str, str], store: Store, server_keys: ServerKeys
) -> OAuthApp:
    basic = _basic_credentials(request)
    if basic is not None and ("client_secret" in form or ("client_id" in form and form["client_id"] != basic[0])):
        raise OAuthError("invalid_request", "use exactly one client authentication method")
    if basic is not None:
        client_id, secret = basic
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id:
        raise _invalid_client(False, "client_id is required")
    found = await store.clients.client_with_secrets(client_id)  # the hot path of every token request: one read
    if found is None:
        raise _invalid_client(basic is not None)
    app, stored_secrets = found
    if not app.confidential:
        if secret:
            raise _invalid_client(basic is not None, "public clients do not authenticate with a secret")
        return app
    if not secret:
        raise _invalid_client(basic is not None)
    presented = server_keys.hash_client_secret(secret)
    now = time.time()
    ok = False
    for stored in stored_secrets:
        live = stored.expires_at is None or now < stored.expires_at
        if hmac.compare_digest(presented, stored.secret_hash) and live:
            ok = True
    if not ok:
        raise _invalid_client(basic is not None)
    return app
