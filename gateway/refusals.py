"""Every way the gateway says no, as one typed exception mapped to HTTP in one place.

Both faces of the gateway (the proxy and the nginx decision endpoint) raise these; `refusal_response` is the only
code that turns a refusal into a status, a JSON body (`{"error", "error_description"}`) and headers, so the two
faces answer the same refusal the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web


class Refusal(Exception):
    """A request the gateway will not forward. `reason` goes to the audit record; the rest to the client."""

    def __init__(
        self, status: int, error: str, description: str, reason: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.reason = reason
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def token_missing() -> Refusal:
    return Refusal(
        401,
        "invalid_token",
        "a Bearer token is required",
        "TOKEN_MISSING",
        {"WWW-Authenticate": 'Bearer realm="coresdk"'},
    )


def token_refused(reason: str) -> Refusal:
    return Refusal(
        401, "invalid_token", f"token refused ({reason})", reason, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def forbidden(reason: str, description: str) -> Refusal:
    return Refusal(403, "forbidden", description, reason)


def unavailable(what: str, reason: str) -> Refusal:
    return Refusal(503, "temporarily_unavailable", f"{what} is unavailable", reason, {"Retry-After": "5"})


def refusal_response(refusal: Refusal) -> web.Response:
    return web.json_response(refusal.body(), status=refusal.status, headers=refusal.headers)
