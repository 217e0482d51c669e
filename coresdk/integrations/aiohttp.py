"""aiohttp: a route decorator per permission, and a middleware that authenticates every route but the public ones.

    setup(app, public=["/healthz"])               # sidecar client from CORESDK_* variables, closed on cleanup

    @require("orders:read")
    async def orders(request: web.Request) -> web.Response:
        principal = principal_of(request)

Refusals (from the decorator, the middleware or a handler's own SDK calls, audit included) are answered as RFC 6750
JSON by the same `http.answer` as every other integration.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from coresdk.client.aio import AsyncClient
from coresdk.client.backend import Backend
from coresdk.client.calls import parse_permission
from coresdk.client.errors import SidecarError, TokenMissing
from coresdk.client.results import Principal
from coresdk.integrations.context import acting_as
from coresdk.integrations.http import PublicPaths, answer, bearer_token, only_one

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BACKEND = web.AppKey("coresdk.backend", Backend)
PRINCIPAL = web.RequestKey("coresdk.principal", Principal)


def refusal(err: SidecarError) -> web.Response:
    a = answer(err)
    return web.json_response(a.body, status=a.status, headers=a.headers)


@web.middleware
async def _refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SidecarError as err:
        return refusal(err)


async def _authenticate(request: web.Request) -> Principal:
    token = bearer_token(only_one(request.headers.getall("Authorization", [])))
    principal = await request.config_dict[BACKEND].authenticate(token)
    request[PRINCIPAL] = principal
    return principal


def _authenticating(public: PublicPaths) -> Middleware:
    @web.middleware
    async def authenticating(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in public:
            return await handler(request)
        with acting_as(await _authenticate(request)):
            return await handler(request)

    return authenticating


def setup(app: web.Application, client: Backend | None = None, *, public: Iterable[str] | None = None) -> Backend:
    """Give `app` its sidecar client and refusal answers; with `public`, authenticate every other path."""
    backend: Backend = client if client is not None else AsyncClient.from_env()
    app[BACKEND] = backend
    app.middlewares.append(_refusals)
    if public is not None:
        app.middlewares.append(_authenticating(PublicPaths(public)))
    if client is None:

        async def close(_: web.Application) -> None:
            await backend.close()

        app.on_cleanup.append(close)
    return backend


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise TokenMissing()
    return principal


def require(permission: str | None = None) -> Callable[[Handler], Handler]:
    """A handler decorator: the verified principal (in `principal_of(request)`) or a refusal, before the handler."""
    if permission is not None:
        parse_permission(permission)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def protected(request: web.Request) -> web.StreamResponse:
            try:
                if permission is None:
                    principal = await _authenticate(request)
                else:
                    token = bearer_token(only_one(request.headers.getall("Authorization", [])))
                    principal = await request.config_dict[BACKEND].require(token, permission)
                    request[PRINCIPAL] = principal
                with acting_as(principal):
                    return await handler(request)
            except SidecarError as err:
                return refusal(err)

        return protected

    return decorate
