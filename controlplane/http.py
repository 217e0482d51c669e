"""Strict request parsing shared by every handler: content types, sizes, duplicate parameters, unknown fields.

Bad input is refused with a precise error before any state is touched.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from controlplane.oauth.errors import ApiError, OAuthError
from coresdk.proxies import TrustedProxies

FORM = "application/x-www-form-urlencoded"
# Set by the wiring from CORESDK_TRUSTED_PROXIES; absent means no proxy is trusted.
TRUSTED_PROXIES = web.AppKey("trusted_proxies", TrustedProxies)


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "request_too_large", f"body exceeds {limit} bytes")
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, "request_too_large", f"body exceeds {limit} bytes")
    return body


def _pairs_to_dict(pairs: Iterable[tuple[str, str]], oauth: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out:
            msg = f"parameter '{key}' is repeated"
            raise OAuthError("invalid_request", msg) if oauth else ApiError(400, "invalid_request", msg)
        out[key] = value
    return out


async def oauth_form(request: web.Request, limit: int) -> dict[str, str]:
    """An RFC 6749 request body: form-encoded, UTF-8, every parameter at most once (§3.1)."""
    if request.content_type != FORM:
        raise OAuthError("invalid_request", f"content type must be {FORM}")
    try:
        body = await read_body(request, limit)
    except ApiError as exc:
        raise OAuthError("invalid_request", exc.description, status=413) from None
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "body is not a valid form") from None
    return {k: v for k, v in _pairs_to_dict(pairs, oauth=True).items() if v != ""}


def query_params(request: web.Request, oauth: bool = True) -> dict[str, str]:
    return {k: v for k, v in _pairs_to_dict(request.query.items(), oauth).items() if v != ""}


async def json_object(
    request: web.Request, limit: int, allowed: Collection[str], required: Collection[str] = ()
) -> dict[str, Any]:
    """A JSON object body with only known fields."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "content type must be application/json")
    body = await read_body(request, limit)
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_json", "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)}")
    missing = sorted(set(required) - set(value))
    if missing:
        raise ApiError(400, "invalid_request", f"missing field(s): {', '.join(missing)}")
    return value


def client_ip(request: web.Request) -> str:
    """The client's address: the TCP peer, or what a trusted proxy (the gateway) says it saw (coresdk.proxies)."""
    peer_info = request.transport.get_extra_info("peername") if request.transport else None
    peer = str(peer_info[0]) if peer_info else ""
    trusted = request.app.get(TRUSTED_PROXIES)
    return trusted.client_address(peer, request.headers) if trusted is not None else peer
