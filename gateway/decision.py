"""Who is asking and may they: the token checked and the route's permission decided, in the token's own tenant.

`Decider` is what the gateway needs of the engine; `SidecarDecider` asks the sidecar over gRPC (one round trip:
Authorize with the token authenticates too). Errors come back as typed refusals: a bad token is 401, a request
the engine cannot judge (no tenant, bad permission) 403, anything else an outage (503), never a pass-through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import grpc

from coresdk.client import error_reason
from coresdk.config.gateway import Route
from coresdk.v1 import auth_pb2, auth_pb2_grpc, policy_pb2, policy_pb2_grpc
from gateway.audit import RequestRecord
from gateway.refusals import Refusal, forbidden, token_refused, unavailable

log = logging.getLogger("coresdk.gateway")


@dataclass(frozen=True)
class Identity:
    """What the application is told about the caller (and the audit record keeps)."""

    subject: str
    tenant_id: str
    client_id: str
    scopes: tuple[str, ...]

    def headers(self, request_id: str) -> dict[str, str]:
        return {
            "X-User-ID": self.subject,
            "X-Tenant-ID": self.tenant_id,
            "X-Scopes": " ".join(self.scopes),
            "X-Request-ID": request_id,
        }


class Decider(Protocol):
    async def authenticate(self, token: str, record: RequestRecord) -> Identity: ...

    async def authorize(self, token: str, route: Route, record: RequestRecord) -> Identity: ...


def _refusal(err: grpc.aio.AioRpcError, what: str) -> Refusal:
    reason = error_reason(err) or err.code().name
    if err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason in ("TENANT_REQUIRED", "INVALID_PERMISSION"):
        return forbidden(reason, f"request refused ({reason})")
    if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
        return token_refused(reason)
    log.warning("sidecar unavailable for %s: %s %s", what, err.code().name, reason)
    return unavailable(what, reason)


class SidecarDecider:
    def __init__(self, channel: grpc.aio.Channel, timeout_seconds: float = 3.0) -> None:
        self._auth = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        self._policy = policy_pb2_grpc.PolicyServiceStub(channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout_seconds

    async def authenticate(self, token: str, record: RequestRecord) -> Identity:
        try:
            p = await self._auth.Authenticate(auth_pb2.AuthenticateRequest(token=token), timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise _refusal(err, "authentication") from None
        identity = Identity(p.subject, p.tenant_id, p.client_id, tuple(p.scopes))
        record.actor, record.tenant_id, record.client_id = identity.subject, identity.tenant_id, identity.client_id
        return identity

    async def authorize(self, token: str, route: Route, record: RequestRecord) -> Identity:
        try:
            decision = await self._policy.Authorize(
                policy_pb2.AuthorizeRequest(
                    token=token,
                    resource=route.resource,
                    action=route.action,
                    tenant_from_token=True,
                    request_id=record.request_id,
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as err:
            raise _refusal(err, "authorization") from None
        p = decision.principal
        identity = Identity(p.subject, p.tenant_id, p.client_id, tuple(p.scopes))
        record.actor, record.tenant_id, record.client_id = identity.subject, identity.tenant_id, identity.client_id
        record.reason = decision.reason
        record.extra["decision_id"] = decision.decision_id
        if not decision.allowed:
            raise forbidden(decision.reason, f"not allowed ({decision.reason})")
        return identity
