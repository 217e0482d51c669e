"""FastAPI and Starlette: a `Security` dependency per permission, and an ASGI middleware that authenticates every
route but the public ones.

    app = FastAPI()
    protect(app)                                  # sidecar client from CORESDK_* variables, refusals as JSON

    @app.get("/orders")
    async def orders(principal: Principal = Security(require("orders:read"))) -> ...

`require(permission)` asks the sidecar once (Authorize with the token, in the token's own tenant) and gives the
handler the verified principal; `require()` only authenticates. `protect(app, public=[...])` adds the middleware:
a request to any other path without a valid token is answered 401 before routing, so a route someone forgot to
protect is still authenticated. Starlette applications add `CoreSDKMiddleware` themselves and use
`principal_of(request)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Request, Security
from fastapi.security import HTTPBearer
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from coresdk.client.aio import AsyncClient
from coresdk.client.backend import Backend
from coresdk.client.calls import parse_permission
from coresdk.client.errors import SidecarError, TokenMissing
from coresdk.client.results import Principal
from coresdk.integrations.context import acting_as, bind
from coresdk.integrations.http import PublicPaths, answer, bearer_token, only_one

STATE = "coresdk"
PRINCIPAL = "principal"
# Declares the scheme in the OpenAPI document (the docs' "Authorize" button); the header is parsed by bearer_token.
_scheme = HTTPBearer(auto_error=False, description="An access token from the CoreSDK authorization server")


def refusal(err: SidecarError) -> JSONResponse:
    a = answer(err)
    return JSONResponse(a.body, status_code=a.status, headers=a.headers)


async def _handle(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, SidecarError)
    return refusal(exc)


def protect(app: Starlette, client: Backend | None = None, *, public: Iterable[str] | None = None) -> Backend:
    """Give `app` its sidecar client (made from CORESDK_* variables unless given, and then closed with the app),
    answer every typed refusal as RFC 6750 JSON, and with `public` authenticate every other path."""
    backend: Backend = client if client is not None else AsyncClient.from_env()
    setattr(app.state, STATE, backend)
    app.add_exception_handler(SidecarError, _handle)
    if public is not None:
        app.add_middleware(CoreSDKMiddleware, backend=backend, public=public)
    if client is None:
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[Any]:
            try:
                async with inner(a) as state:
                    yield state
            finally:
                await backend.close()

        app.router.lifespan_context = lifespan
    return backend


def _backend(request: Request) -> Backend:
    backend = getattr(request.app.state, STATE, None)
    if backend is None:
        raise RuntimeError("coresdk.integrations.fastapi.protect(app) was not called")
    return backend  # type: ignore[no-any-return]


def principal_of(request: Request) -> Principal:
    """The principal the middleware (or a `require` dependency) established for this request."""
    principal = getattr(request.state, PRINCIPAL, None)
    if not isinstance(principal, Principal):
        raise TokenMissing()
    return principal


def require(permission: str | None = None) -> Callable[..., Awaitable[Principal]]:
    """A dependency giving the verified principal, refusing with 401/403/503 otherwise. The permission is checked
    here, at import time, so a typo fails the application's start rather than every request."""
    if permission is not None:
        parse_permission(permission)

    async def dependency(request: Request, _: Annotated[Any, Security(_scheme)]) -> Principal:
        token = bearer_token(only_one(request.headers.getlist("authorization")))
        backend = _backend(request)
        if permission is None:
            principal = await backend.authenticate(token)
        else:
            principal = await backend.require(token, permission)
        setattr(request.state, PRINCIPAL, principal)
        bind(principal)
        return principal

    return dependency


class CoreSDKMiddleware:
    """Pure ASGI: every HTTP request and WebSocket handshake outside `public` needs a valid bearer token."""

    def __init__(self, app: ASGIApp, backend: Backend, public: Iterable[str] = ()) -> None:
        self.app = app
        self.backend = backend
        self.public = PublicPaths(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        values = [v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"]
        try:
            principal = await self.backend.authenticate(bearer_token(only_one(values)))
        except SidecarError as err:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await refusal(err)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        with acting_as(principal):
            await self.app(scope, receive, send)
