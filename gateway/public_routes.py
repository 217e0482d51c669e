"""The control plane's public face: an exact list of (method, path), never a prefix.

The control plane is internal: its admin API, users, keys, token events, revocation feed, audit store and metrics
must never be reachable from the internet. Forwarding by prefix (`/.well-known/`, `/v1/oauth/token`) let
`/.well-known/../v1/oauth/apps` through once a client normalised the dots; an exact match on the canonical path
(gateway.paths) cannot be stretched. These are the endpoints a browser or an OAuth client needs: RFC 6749
authorization and token, RFC 7009 revocation, RFC 7662 introspection, logout, RFC 8414 metadata and the JWKS.
"""

from __future__ import annotations

CONTROL_PLANE_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/v1/oauth/authorize"),
        ("POST", "/v1/oauth/authorize"),
        ("POST", "/v1/oauth/token"),
        ("POST", "/v1/oauth/revoke"),
        ("POST", "/v1/oauth/introspect"),
        ("POST", "/v1/oauth/logout"),
        ("GET", "/.well-known/oauth-authorization-server"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/api/v1/jwks"),
    }
)
CONTROL_PLANE_PATHS: frozenset[str] = frozenset(path for _, path in CONTROL_PLANE_ROUTES)


def control_plane_route(method: str, path: str) -> bool:
    return (method, path) in CONTROL_PLANE_ROUTES


def allowed_methods(path: str) -> list[str]:
    """For a 405 on a public path asked with another method."""
    return sorted(m for m, p in CONTROL_PLANE_ROUTES if p == path)
