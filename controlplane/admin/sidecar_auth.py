"""Who calls the sidecar-facing endpoints (audit ingest, the revocation feed): an enrolled sidecar, or — only in
development — the holder of the shared CORESDK_SIDECAR_TOKEN.

An enrolled credential is "<sidecar id>.<secret>": the id finds the row, the secret is compared by its SHA-256 in
constant time. The secret is 256 random bits, so an unsalted hash is enough; nothing about it is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from controlplane.oauth.context import Context
from controlplane.oauth.errors import ApiError
from controlplane.store.sidecars import Binding, SqlSidecarStore

ID_PREFIX = "sc"
SHARED_CALLER = "shared-development-token"
_UNKNOWN = hashlib.sha256(b"no such sidecar").hexdigest()  # compared against when the id is unknown


@dataclass(frozen=True)
class SidecarCaller:
    id: str
    binding: Binding | None  # None: every chain (the shared token, development only)

    def may_write(self, chain_id: str) -> bool:
        return self.binding is None or self.binding.allows(chain_id)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def sidecar_store(ctx: Context) -> SqlSidecarStore:
    return SqlSidecarStore(ctx.store.db)


def _unauthorized(description: str) -> ApiError:
    return ApiError(401, "unauthorized", description, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "unauthorized", "bearer credential required", {"WWW-Authenticate": 'Bearer realm="coresdk"'}
        )
    return token


async def require_sidecar_or_admin(request: web.Request) -> None:
    """For what sidecars read (the revocation feed): any live sidecar credential, or the admin token."""
    ctx: Context = request.app["ctx"]
    if not hmac.compare_digest(bearer(request).encode(), ctx.config.admin_token.encode()):
        await authenticate_sidecar(request)


async def authenticate_sidecar(request: web.Request) -> SidecarCaller:
    """The calling sidecar and the chains it may write; 401 for anything else."""
    ctx: Context = request.app["ctx"]
    token = bearer(request)
    shared = ctx.config.sidecar_token
    if shared is not None and hmac.compare_digest(token.encode(), shared.encode()):
        if ctx.config.development:
            return SidecarCaller(SHARED_CALLER, None)
        raise _unauthorized(
            "the shared CORESDK_SIDECAR_TOKEN is accepted only in development: enrol each sidecar "
            "(coresdk sidecar enrol) and give it its own CORESDK_CP_TOKEN"
        )
    sidecar_id, dot, secret = token.partition(".")
    plausible = dot and sidecar_id.startswith(f"{ID_PREFIX}_") and len(sidecar_id) <= 64
    credential = await sidecar_store(ctx).get(sidecar_id) if plausible else None
    expected = credential.secret_hash if credential is not None else _UNKNOWN
    matches = hmac.compare_digest(hash_secret(secret).encode(), expected.encode())
    if credential is None or not matches:
        raise _unauthorized("invalid sidecar credential")
    if credential.revoked_at is not None:
        raise _unauthorized(f"the credential of sidecar {credential.id} is revoked")
    return SidecarCaller(credential.id, credential.binding)
