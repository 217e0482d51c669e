"""Who is asking and may they: the token checked and the route's permission decided in process by the engine, in
the token's own tenant (coresdk.engine — the same validator and authorizer the sidecar serves over gRPC).

Engine errors become typed refusals exactly as the sidecar's statuses did: a bad token is 401, a request the engine
cannot judge (no tenant, bad permission) 403, anything else — keys or revocations unavailable, the policy engine
down, the audit journal unusable — an outage (503), never a pass-through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from coresdk import reasons
from coresdk.config.gateway import Route
from coresdk.engine import Engine
from coresdk.errors import Code, CoreSDKError
from coresdk.v1 import common_pb2, policy_pb2
from gateway.audit import RequestRecord
from gateway.refusals import Refusal, forbidden, token_refused, unavailable

log = logging.getLogger("coresdk.gateway")
_FORBIDDEN_REQUESTS = (reasons.TENANT_REQUIRED, reasons.INVALID_PERMISSION)


@dataclass(frozen=True)
class Identity:
    """What the application is told about the caller (and the audit record keeps)."""

    subject: str
    tenant_id: str
    client_id: str
    scopes: tuple[str, ...]

    @classmethod
    def of(cls, principal: common_pb2.Principal) -> Identity:
        return cls(principal.subject, principal.tenant_id, principal.client_id, tuple(principal.scopes))

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


def refusal_of(err: CoreSDKError, what: str) -> Refusal:
    """The one mapping of engine errors to HTTP for the gateway."""
    if err.code is Code.INVALID_ARGUMENT and err.reason in _FORBIDDEN_REQUESTS:
        return forbidden(err.reason, f"request refused ({err.reason})")
    if err.code in (Code.UNAUTHENTICATED, Code.INVALID_ARGUMENT):
        return token_refused(err.reason)
    if err.code is Code.PERMISSION_DENIED:
        return forbidden(err.reason, f"request refused ({err.reason})")
    log.warning("%s unavailable: %s %s", what, err.code.name, err.reason)
    return unavailable(what, err.reason)


def _note(record: RequestRecord, identity: Identity) -> Identity:
    record.actor, record.tenant_id, record.client_id = identity.subject, identity.tenant_id, identity.client_id
    return identity


class EngineDecider:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def authenticate(self, token: str, record: RequestRecord) -> Identity:
        try:
            principal = await self._engine.validator.authenticate(token)
        except CoreSDKError as err:
            raise refusal_of(err, "authentication") from None
        return _note(record, Identity.of(principal))

    async def authorize(self, token: str, route: Route, record: RequestRecord) -> Identity:
        request = policy_pb2.AuthorizeRequest(
            token=token,
            resource=route.resource,
            action=route.action,
            tenant_from_token=True,
            request_id=record.request_id,
        )
        try:
            result = await self._engine.authorizer.authorize(request)
        except CoreSDKError as err:
            raise refusal_of(err, "authorization") from None
        identity = _note(record, Identity.of(result.principal))
        record.reason = result.decision.reason
        record.extra["decision_id"] = result.decision_id
        if not result.decision.allowed:
            raise forbidden(result.decision.reason, f"not allowed ({result.decision.reason})")
        return identity
