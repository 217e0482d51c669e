"""OAuth 2 errors (RFC 6749 §5.2, RFC 7009, RFC 7662) and the control plane's JSON API errors, mapped once to HTTP."""

from __future__ import annotations

from aiohttp import web

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 error: `error` is the registered code, `description` is safe to show."""

    def __init__(self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


class ApiError(Exception):
    """A JSON API error of the admin and internal APIs."""

    def __init__(self, status: int, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


def error_response(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description}, status=status, headers={**NO_STORE, **(headers or {})}
    )
