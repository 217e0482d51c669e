"""What every web integration shares: reading the bearer token (RFC 6750 §2.1) and answering a refusal.

`answer` is the one place where a typed refusal becomes an HTTP status, a JSON body `{"error",
"error_description"}` and headers: `WWW-Authenticate` per RFC 6750 §3 on 401 (no error code when no token was
sent, `invalid_token` otherwise) and on a missing scope (`insufficient_scope` with the scope), `Retry-After` on 503.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from coresdk.client.errors import (
    AuthenticationFailed,
    Forbidden,
    ScopeMissing,
    SidecarError,
    TokenMissing,
)
from coresdk.errors import Code

REALM = "coresdk"
MAX_TOKEN = 16384
RETRY_AFTER_SECONDS = "5"
# RFC 6750 §2.1 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")

_ERROR: dict[Code, tuple[str, str]] = {
    Code.INVALID_ARGUMENT: ("invalid_request", "invalid request"),
    Code.UNAUTHENTICATED: ("invalid_token", "token refused"),
    Code.PERMISSION_DENIED: ("forbidden", "not allowed"),
    Code.NOT_FOUND: ("not_found", "not found"),
    Code.UNAVAILABLE: ("temporarily_unavailable", "temporarily unavailable"),
    Code.INTERNAL: ("server_error", "internal error"),
}


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 7235 §2.1).

    No header, or another scheme, is TokenMissing; a Bearer header whose token is not one b64token is MALFORMED.
    """
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenMissing()
    token = token.strip()
    if not token:
        raise TokenMissing()
    if len(token) > MAX_TOKEN or not _B64TOKEN.fullmatch(token):
        raise AuthenticationFailed("MALFORMED", "the Bearer token is not a single well-formed token")
    return token


def only_one(values: Iterable[str]) -> str | None:
    """The one Authorization header of a request; two are ambiguous (which one did a proxy check?), so refused."""
    found = list(values)
    if len(found) > 1:
        raise AuthenticationFailed("MALFORMED", "more than one Authorization header")
    return found[0] if found else None


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


def _header_safe(reason: str) -> str:
    """A reason fit for a quoted-string header value: custom (Rego) reasons are policy text, not ours to trust."""
    return _UNSAFE.sub("_", reason)[:128] or "UNKNOWN"


def answer(err: SidecarError) -> Answer:
    error, what = _ERROR[err.code]
    description = f"{what} ({_header_safe(err.reason)})"
    headers: dict[str, str] = {}
    if isinstance(err, TokenMissing):
        description = "a Bearer token is required (TOKEN_MISSING)"
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
    elif isinstance(err, AuthenticationFailed):
        refused = f'error="invalid_token", error_description="{description}"'
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", {refused}'
    elif isinstance(err, ScopeMissing):
        error = "insufficient_scope"
        scope = f', scope="{_header_safe(err.permission)}"' if err.permission else ""
        headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="insufficient_scope"{scope}'
    elif isinstance(err, Forbidden):
        pass
    elif err.code is Code.UNAVAILABLE:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return Answer(err.http_status, {"error": error, "error_description": description}, headers)


class PublicPaths:
    """Paths served without a token. Exact matches only: `/healthz/` or `/healthz/x` are not `/healthz`, so an
    unexpected spelling is authenticated rather than let through."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths = frozenset(paths)
        for path in self._paths:
            if not path.startswith("/"):
                raise ValueError(f"public paths start with '/', got {path!r}")

    def __contains__(self, path: object) -> bool:
        return path in self._paths
