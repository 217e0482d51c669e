"""OAuth app registration rules: least-privilege scopes, exact redirect URIs, explicit grant types.

Redirect URIs are registered exactly: https, or http only to a loopback IP literal (RFC 8252 §7.3, where the port
may vary at request time); no wildcards, no fragments, no userinfo. Public clients (no secret) cannot use
client_credentials.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from controlplane.oauth.errors import ApiError

GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
CLIENT_TYPES = ("confidential", "public")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]{1,128}")  # RFC 6749 §3.3 scope-token
_LOOPBACK_HOSTS = ("127.0.0.1", "::1")


def _bad(description: str) -> ApiError:
    return ApiError(400, "invalid_client_metadata", description)


def validate_scopes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or len(value) > 100:
        raise _bad("scopes must be a non-empty list of scope names (least privilege: declare each one)")
    for scope in value:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope) or "*" in scope:
            raise _bad(f"invalid scope {scope!r}: scope tokens, no spaces or wildcards")
    if len(set(value)) != len(value):
        raise _bad("scopes contain duplicates")
    return tuple(value)


def is_loopback_redirect(uri: str) -> bool:
    try:
        parts = urlsplit(uri)
        return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    except ValueError:
        return False


def validate_redirect_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise _bad("redirect_uris entries must be non-empty strings")
    if "*" in uri:
        raise _bad(f"wildcards are not allowed in redirect URIs: {uri}")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise _bad(f"invalid redirect URI: {uri}") from None
    del port
    if "#" in uri or parts.fragment:
        raise _bad(f"redirect URIs must not contain a fragment: {uri}")
    if parts.username or parts.password:
        raise _bad(f"redirect URIs must not contain credentials: {uri}")
    if not parts.hostname:
        raise _bad(f"redirect URIs must be absolute: {uri}")
    if parts.scheme == "https":
        return uri
    if parts.scheme == "http" and is_loopback_redirect(uri):
        return uri
    raise _bad(f"redirect URIs must use https (http only for 127.0.0.1 or [::1]): {uri}")


def redirect_matches(registered: tuple[str, ...], requested: str) -> bool:
    """Exact string match; for loopback http URIs, any port (RFC 8252 §7.3), everything else exact."""
    if requested in registered:
        return True
    if not is_loopback_redirect(requested):
        return False
    try:
        req = urlsplit(requested)
        req_port = req.port
    except ValueError:
        return False
    del req_port
    for uri in registered:
        if not is_loopback_redirect(uri):
            continue
        reg = urlsplit(uri)
        if (reg.scheme, reg.hostname, reg.path, reg.query) == (req.scheme, req.hostname, req.path, req.query) and not (
            req.fragment or req.username or req.password
        ):
            return True
    return False


def validate_app_fields(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Validated subset of name, client_type, scopes, redirect_uris, grant_types, refresh_in_cookie."""
    out: dict[str, Any] = {}
    if "name" in body or creating:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise _bad("name must be a non-empty string of at most 200 characters")
        out["name"] = name.strip()
    if "client_type" in body or creating:
        client_type = body.get("client_type", "confidential")
        if client_type not in CLIENT_TYPES:
            raise _bad("client_type must be confidential or public")
        out["client_type"] = client_type
    if "scopes" in body or creating:
        out["scopes"] = validate_scopes(body.get("scopes"))
    if "grant_types" in body or creating:
        grants = body.get("grant_types", ["authorization_code", "refresh_token"])
        if not isinstance(grants, list) or not grants or any(g not in GRANT_TYPES for g in grants):
            raise _bad(f"grant_types must be a non-empty list of {', '.join(GRANT_TYPES)}")
        if len(set(grants)) != len(grants):
            raise _bad("grant_types contain duplicates")
        out["grant_types"] = tuple(grants)
    if "redirect_uris" in body or creating:
        uris = body.get("redirect_uris", [])
        if not isinstance(uris, list) or len(uris) > 20:
            raise _bad("redirect_uris must be a list")
        out["redirect_uris"] = tuple(validate_redirect_uri(u) for u in uris)
    if "tenant_id" in body or creating:
        tenant = body.get("tenant_id", "")
        if not isinstance(tenant, str) or len(tenant) > 200:
            raise _bad("tenant_id must be a string (the tenant of client_credentials tokens)")
        out["tenant_id"] = tenant
    if "refresh_in_cookie" in body:
        if not isinstance(body["refresh_in_cookie"], bool):
            raise _bad("refresh_in_cookie must be true or false")
        out["refresh_in_cookie"] = body["refresh_in_cookie"]
    return out


def check_app_consistency(client_type: str, grant_types: tuple[str, ...], redirect_uris: tuple[str, ...]) -> None:
    if client_type == "public" and "client_credentials" in grant_types:
        raise _bad("public clients cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise _bad("authorization_code needs at least one redirect URI")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise _bad("refresh_token is only issued with authorization_code")
