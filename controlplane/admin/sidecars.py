"""Sidecar enrolment (admin token): POST/GET /api/v1/sidecars, DELETE /api/v1/sidecars/{id}.

Each sidecar gets its own credential, shown once at enrolment and stored only as a hash, bound to the chain ids
and chain-id prefixes it may write. Bindings of live sidecars never overlap, so one sidecar's credential cannot
write (or backdate) another's chain. Revoking one sidecar leaves every other working.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from aiohttp import web

from controlplane.admin.api import require_admin
from controlplane.admin.sidecar_auth import ID_PREFIX, hash_secret, sidecar_store
from controlplane.http import client_ip, json_object
from controlplane.oauth.context import Context
from controlplane.oauth.errors import ApiError
from controlplane.secrets import new_id, new_token
from controlplane.store.sidecars import Binding, BindingConflict, SidecarCredential
from coresdk.audit import chain_id as chain_ids

MAX_BINDINGS = 64


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _view(credential: SidecarCredential) -> dict[str, Any]:
    return {
        "id": credential.id,
        "name": credential.name,
        "chains": list(credential.binding.chains),
        "prefixes": list(credential.binding.prefixes),
        "created_at": _iso(credential.created_at),
        "revoked_at": _iso(credential.revoked_at),
    }


def _names(body: dict[str, Any], field: str) -> tuple[str, ...]:
    values = body.get(field, [])
    if not isinstance(values, list) or len(values) > MAX_BINDINGS:
        raise ApiError(400, "invalid_request", f"{field} must be a list of at most {MAX_BINDINGS} chain ids")
    try:
        checked = tuple(chain_ids.check(v, field) for v in values)
    except chain_ids.InvalidChainId as exc:
        raise ApiError(400, "invalid_chain_id", str(exc)) from None
    if len(set(checked)) != len(checked):
        raise ApiError(400, "invalid_request", f"{field} repeats a value")
    return checked


def parse_binding(body: dict[str, Any]) -> Binding:
    binding = Binding(_names(body, "chains"), _names(body, "prefixes"))
    if not binding.chains and not binding.prefixes:
        raise ApiError(400, "invalid_request", "bind the sidecar to at least one chain id or prefix")
    return binding


async def enrol(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    body = await json_object(request, ctx.config.max_body_bytes, {"name", "chains", "prefixes"}, {"name"})
    name = body["name"]
    if not chain_ids.is_valid(name):
        raise ApiError(400, "invalid_request", f"name must be {chain_ids.DESCRIPTION}")
    secret = new_token(32)
    credential = SidecarCredential(
        id=new_id(ID_PREFIX),
        name=name,
        binding=parse_binding(body),
        secret_hash=hash_secret(secret),
        created_at=time.time(),
        revoked_at=None,
    )
    try:
        await sidecar_store(ctx).enrol(credential, "admin", client_ip(request))
    except BindingConflict as exc:
        raise ApiError(409, "conflict", f"chain {exc.chain} is already writable by {exc.holder}") from None
    view = {**_view(credential), "credential": f"{credential.id}.{secret}"}
    return web.json_response(view, status=201, headers={"Cache-Control": "no-store"})


async def list_sidecars(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    return web.json_response(
        {
            "sidecars": [_view(c) for c in await sidecar_store(ctx).list()],
            # the doctor reads this: true only in development, where the shared CORESDK_SIDECAR_TOKEN is accepted
            "shared_token_accepted": ctx.config.development and ctx.config.sidecar_token is not None,
        }
    )


async def revoke(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    store = sidecar_store(ctx)
    revoked = await store.revoke(request.match_info["sidecar_id"], time.time(), "admin", client_ip(request))
    if revoked is None:
        raise ApiError(404, "not_found", "no such sidecar")
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/sidecars", enrol)
    router.add_get("/api/v1/sidecars", list_sidecars)
    router.add_delete("/api/v1/sidecars/{sidecar_id}", revoke)
