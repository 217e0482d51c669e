"""One audit record per handled request, written before the answer leaves: the gateway's "no unaudited answer"
rule, for handlers in the application.

    audit = Audit(client)

    @audit("order.update", resource="orders/{order_id}")
    async def update(order_id: str, principal: Principal = Security(require("orders:write"))): ...

    async with audit.record("order.export", resource="orders") as entry:
        entry.metadata["rows"] = 120

The record carries the outcome ("success", "deny" for a typed refusal, "error" for any other exception), the
principal (an argument of type Principal, else the request's, else "anonymous") and metadata, which the sidecar
masks before hashing. When a successful handler's record cannot be made durable, `AuditUnavailable` (503) replaces
its answer. A refusal or an error whose record fails is still raised as it was (it is not an answer that grants
anything), and the failure is logged. A handler's side effects happen before its outcome is known: the refusal
withholds the answer, not the work.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from coresdk.client.backend import Backend, SyncBackend
from coresdk.client.errors import AuditUnavailable, SidecarError
from coresdk.client.results import AuditEvent, Principal
from coresdk.integrations.context import current_principal

log = logging.getLogger("coresdk.sdk.audit")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AuditEntry:
    """The record being built while the handler runs; the handler may set the outcome, reason or metadata."""

    action: str
    resource: str
    principal: Principal | None
    metadata: dict[str, Any] = field(default_factory=dict)
    outcome: str = "success"
    reason: str = ""
    ip: str = ""

    def failed(self, exc: Exception) -> None:
        if isinstance(exc, SidecarError):
            self.outcome, self.reason = ("error" if exc.http_status >= 500 else "deny"), exc.reason
        else:
            self.outcome, self.reason = "error", type(exc).__name__

    def event(self, chain_id: str) -> AuditEvent:
        p = self.principal
        return AuditEvent(
            action=self.action,
            outcome=self.outcome,
            actor=p.subject if p else "anonymous",
            resource=self.resource,
            tenant_id=p.tenant_id if p else "",
            reason=self.reason,
            ip=self.ip,
            chain_id=chain_id,
            metadata={**({"client_id": p.client_id} if p and p.client_id else {}), **self.metadata},
        )


def _refused(entry: AuditEntry, err: SidecarError) -> AuditUnavailable:
    log.error("audit record not written action=%s reason=%s", entry.action, err.reason)
    return AuditUnavailable(message=f"the audit record could not be written ({err.reason})")


def _entry(action: str, resource: str, principal: Principal | None, metadata: Mapping[str, Any] | None) -> AuditEntry:
    return AuditEntry(action, resource, principal or current_principal(), dict(metadata or {}))


def _from_arguments(resource: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Principal | None]:
    """The resource template filled from keyword arguments, and a Principal argument if the handler has one."""
    principal = next((a for a in (*args, *kwargs.values()) if isinstance(a, Principal)), None)
    return resource.format_map(kwargs) if "{" in resource else resource, principal


class Audit:
    """Audit around async handlers, through any `Backend` (the sidecar client, or an in-process engine)."""

    def __init__(self, backend: Backend, chain_id: str = "") -> None:
        self._backend = backend
        self._chain = chain_id

    @asynccontextmanager
    async def record(
        self,
        action: str,
        resource: str = "",
        *,
        principal: Principal | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[AuditEntry]:
        entry = _entry(action, resource, principal, metadata)
        try:
            yield entry
        except Exception as exc:
            entry.failed(exc)
            try:
                await self._backend.append(entry.event(self._chain))
            except SidecarError as err:
                _refused(entry, err)
            raise
        try:
            await self._backend.append(entry.event(self._chain))
        except SidecarError as err:
            raise _refused(entry, err) from None

    def __call__(
        self, action: str, resource: str = ""
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
        def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            @functools.wraps(handler)
            async def audited(*args: P.args, **kwargs: P.kwargs) -> R:
                target, principal = _from_arguments(resource, args, kwargs)
                async with self.record(action, target, principal=principal):
                    return await handler(*args, **kwargs)

            return audited

        return decorate


class SyncAudit:
    """The same for WSGI handlers, through a `SyncBackend`."""

    def __init__(self, backend: SyncBackend, chain_id: str = "") -> None:
        self._backend = backend
        self._chain = chain_id

    @contextmanager
    def record(
        self,
        action: str,
        resource: str = "",
        *,
        principal: Principal | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[AuditEntry]:
        entry = _entry(action, resource, principal, metadata)
        try:
            yield entry
        except Exception as exc:
            entry.failed(exc)
            try:
                self._backend.append(entry.event(self._chain))
            except SidecarError as err:
                _refused(entry, err)
            raise
        try:
            self._backend.append(entry.event(self._chain))
        except SidecarError as err:
            raise _refused(entry, err) from None

    def __call__(self, action: str, resource: str = "") -> Callable[[Callable[P, R]], Callable[P, R]]:
        def decorate(handler: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(handler)
            def audited(*args: P.args, **kwargs: P.kwargs) -> R:
                target, principal = _from_arguments(resource, args, kwargs)
                with self.record(action, target, principal=principal):
                    return handler(*args, **kwargs)

            return audited

        return decorate
