"""Flask (WSGI): a route decorator per permission that puts the verified principal in `g.principal`.

    sdk = CoreSDK(app)                            # sync sidecar client from CORESDK_* variables, refusals as JSON

    @app.get("/orders")
    @require("orders:read")
    def orders():
        return {"user": g.principal.subject}

Refusals raised anywhere in a request (the decorator, a handler's own SDK calls, audit) are answered as RFC 6750
JSON by the same `http.answer` as every other integration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request

from coresdk.client.backend import SyncBackend
from coresdk.client.calls import parse_permission
from coresdk.client.errors import SidecarError
from coresdk.client.sync import Client
from coresdk.integrations.context import acting_as
from coresdk.integrations.http import answer, bearer_token, only_one

EXTENSION = "coresdk"
P = ParamSpec("P")
R = TypeVar("R")


def refusal(err: SidecarError) -> Response:
    a = answer(err)
    response = jsonify(a.body)
    response.status_code = a.status
    response.headers.update(a.headers)
    return response


class CoreSDK:
    """The Flask extension: one sync client per process, shared by every worker thread."""

    def __init__(self, app: Flask | None = None, client: SyncBackend | None = None) -> None:
        self.backend: SyncBackend = client if client is not None else Client.from_env()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self
        app.register_error_handler(SidecarError, refusal)


def backend() -> SyncBackend:
    extension = current_app.extensions.get(EXTENSION)
    if not isinstance(extension, CoreSDK):
        raise RuntimeError("coresdk.integrations.flask.CoreSDK(app) was not set up")
    return extension.backend


def require(permission: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Authenticate (and with a permission, authorize in the token's own tenant) before the view runs."""
    if permission is not None:
        parse_permission(permission)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def protected(*args: P.args, **kwargs: P.kwargs) -> R:
            token = bearer_token(only_one(request.headers.getlist("Authorization")))
            sdk = backend()
            g.principal = sdk.authenticate(token) if permission is None else sdk.require(token, permission)
            with acting_as(g.principal):
                return view(*args, **kwargs)

        return protected

    return decorate
