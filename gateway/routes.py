"""Which route a request is: the exact public control-plane list, then the route map, matched on the canonical path.

Matching happens on the path gateway.paths accepted, which is also the path forwarded, so a route's permission is
the permission of exactly what the application receives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coresdk.config.gateway import Route, route_pattern
from gateway.public_routes import allowed_methods, control_plane_route
from gateway.refusals import Refusal


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


class RouteTable:
    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._routes = [CompiledRoute(r, route_pattern(r.path)) for r in routes]

    def match(self, method: str, path: str) -> Route | None:
        for c in self._routes:
            if c.route.method == method and c.pattern.fullmatch(path):
                return c.route
        return None

    @staticmethod
    def public(method: str, path: str) -> bool:
        """A control-plane endpoint the internet may reach; another method on one of their paths is 405."""
        if control_plane_route(method, path):
            return True
        methods = allowed_methods(path)
        if methods:
            raise Refusal(
                405, "method_not_allowed", "method not allowed", "METHOD_NOT_ALLOWED", {"Allow": ", ".join(methods)}
            )
        return False
