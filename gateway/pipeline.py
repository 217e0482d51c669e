"""The decision both faces share: which route, who, may they, within their plan — or a typed refusal.

The proxy (gateway.proxy) forwards what this allows; the nginx decision endpoint (gateway.authz) answers with it.
One function, so the two faces cannot drift apart in what they let through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coresdk.config.gateway import Route
from gateway.audit import RequestRecord
from gateway.bearer import bearer_token
from gateway.decision import Decider, Identity
from gateway.entitlement import EntitlementCheck
from gateway.paths import Target
from gateway.refusals import Refusal
from gateway.routes import RouteTable


@dataclass(frozen=True)
class Verdict:
    """Allowed: a public control-plane endpoint (no identity), or a route with the caller's identity."""

    route: Route | None
    identity: Identity | None
    token: str = ""  # the bearer token the decision was made on (MCP routes decide again per tool call)

    @property
    def public(self) -> bool:
        return self.route is None


class Pipeline:
    def __init__(
        self, routes: RouteTable, decider: Decider, entitlements: EntitlementCheck, cp_configured: bool
    ) -> None:
        self._routes = routes
        self._decider = decider
        self._entitlements = entitlements
        self._cp = cp_configured

    async def decide(self, method: str, target: Target, headers: Mapping[str, str], record: RequestRecord) -> Verdict:
        path = target.path
        if self._routes.public(method, path):
            if not self._cp:
                raise Refusal(404, "not_found", "no control plane is configured", "NO_CONTROL_PLANE")
            record.route, record.outcome, record.reason = path, "public", "PUBLIC_ROUTE"
            return Verdict(None, None)
        route = self._routes.match(method, path)
        token = bearer_token(headers)
        if route is None:
            await self._decider.authenticate(token, record)  # 401 without a valid token, 404 with one
            raise Refusal(404, "not_found", "no such route", "ROUTE_NOT_FOUND")
        record.route = route.path
        identity = await self._decider.authorize(token, route, record)
        await self._entitlements.check(identity.tenant_id)
        record.outcome = "allow"
        return Verdict(route, identity, token)
