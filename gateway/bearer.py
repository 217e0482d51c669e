"""The bearer token of a request (RFC 6750 §2.1): exactly `Bearer <token>`, one token, bounded in size."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.refusals import token_missing

MAX_TOKEN = 16384


def bearer_token(headers: Mapping[str, str]) -> str:
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme != "Bearer" or not token or " " in token or len(token) > MAX_TOKEN:
        raise token_missing()
    return token
