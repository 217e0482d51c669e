"""Where the parts meet: the gateway forwards only what it authorized, and the control plane knows its clients.

Probes are sent as an attacker would (raw request targets, the admin token itself) so a gateway that normalises a
path after deciding on it, or forwards the control plane by prefix, fails here rather than in an incident.
"""

from __future__ import annotations

import http.client
import ipaddress
from urllib.parse import urlsplit

from coresdk.config.controlplane import origin_of
from coresdk.doctor.model import Check, Context, Status, fail, ok, warn
from coresdk.doctor.operations import gateway_url
from coresdk.errors import ConfigError
from coresdk.proxies import parse_trusted_proxies

# Ambiguous spellings of internal control-plane paths; the gateway must refuse every one (400), never answer 200.
AMBIGUOUS_PROBES = (
    "/.well-known/../api/v1/keys",
    "/.well-known/%2e%2e/api/v1/audit",
    "/v1/oauth/token/../apps",
    "/v1/oauth/token/%2E%2E/apps",
    "//api/v1/keys",
)
# The control plane's internal API asked for plainly through the gateway with the admin token: never 200.
INTERNAL_PROBES = (
    "/v1/oauth/apps",
    "/v1/users",
    "/api/v1/keys",
    "/api/v1/audit",
    "/api/v1/token-events",
    "/api/v1/replica",
    "/api/v1/sidecars",
    "/metrics",
)


def _raw_get(ctx: Context, base: str, target: str, headers: dict[str, str]) -> int:
    """GET with the target sent byte for byte (urllib and friends would normalise it)."""
    parts = urlsplit(base)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=ctx.timeout)
    try:
        conn.request("GET", target, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def gateway_paths(ctx: Context) -> tuple[Status, str, str]:
    base = gateway_url(ctx)
    headers = ctx.admin_headers() if ctx.admin_token() else {}
    answered = {t: _raw_get(ctx, base, t, headers) for t in AMBIGUOUS_PROBES}
    let_through = [f"{t} → {s}" for t, s in answered.items() if s != 400]
    if let_through:
        return fail(
            "ambiguous paths were not refused: " + ", ".join(let_through),
            "run the CoreSDK gateway (it refuses dot segments and encoded separators with 400) and nothing in front "
            "of it that rewrites paths",
        )
    return ok(f"{len(answered)} ambiguous spellings of internal paths refused with 400")


def gateway_internal(ctx: Context) -> tuple[Status, str, str]:
    base = gateway_url(ctx)
    if not ctx.admin_token():
        return Status.SKIP, "no admin token to probe with (CPOD_ADMIN_TOKEN or CPOD_ADMIN_TOKEN_FILE)", ""
    answered = {t: _raw_get(ctx, base, t, ctx.admin_headers()) for t in INTERNAL_PROBES}
    reached = [t for t, s in answered.items() if s < 300]
    if reached:
        return fail(
            "the control plane's internal API answers through the gateway: " + ", ".join(reached),
            "forward only the public OAuth endpoints to the control plane (the CoreSDK gateway does, by exact list)",
        )
    return ok("admin API, users, keys, audit, token events and metrics are not reachable through the gateway")


def trusted_proxies(ctx: Context) -> tuple[Status, str, str]:
    try:
        trusted = parse_trusted_proxies(ctx.get("CORESDK_TRUSTED_PROXIES"))
    except ConfigError as exc:
        return fail(str(exc), "list the gateway's (or load balancer's) addresses as CIDRs")
    wide = [str(n) for n in trusted.networks if n.prefixlen < (8 if n.version == 4 else 32)]
    if wide:
        return fail(
            f"CORESDK_TRUSTED_PROXIES trusts whole address ranges ({', '.join(wide)}): "
            "any client there can choose its address",
            "list only the gateway's addresses",
        )
    public = [str(n) for n in trusted.networks if n.is_global]
    if public:
        return warn(f"trusted proxies on public addresses: {', '.join(public)}", "trust only internal proxy addresses")
    if not trusted.networks:
        if ctx.get("CORESDK_GATEWAY_URL") or ctx.get("CORESDK_GATEWAY_ADDR"):
            return warn(
                "no trusted proxy: behind the gateway every client has the gateway's address (one login limit and "
                "one rate budget for everyone)",
                "set CORESDK_TRUSTED_PROXIES to the gateway's address on the control plane",
            )
        return ok("no proxy trusted: the TCP peer is the client")
    return ok(f"Forwarded addresses believed only from {', '.join(str(n) for n in trusted.networks)}")


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def signin_origins(ctx: Context) -> tuple[Status, str, str]:
    issuer = ctx.get("CORESDK_ISSUER")
    extra = [o.strip() for o in ctx.get("CORESDK_PUBLIC_ORIGINS").split(",") if o.strip()]
    origins = ([origin_of(issuer)] if issuer else []) + [origin_of(o) for o in extra]
    if not origins:
        return Status.SKIP, "CORESDK_ISSUER is not in this environment", ""
    plain = [o for o in origins if o.startswith("http://") and not _loopback(o)]
    if plain:
        return fail(
            f"sign-in accepted from plain-http origins: {', '.join(plain)}",
            "serve the issuer and every public origin over https",
        )
    return ok(f"the sign-in form is accepted only from {', '.join(origins)}")


CHECKS = [
    Check("gateway.paths", "Ambiguous request paths refused at the gateway", gateway_paths),
    Check("gateway.internal", "Control-plane internal API unreachable through the gateway", gateway_internal),
    Check("proxies.trusted", "Client addresses believed only from trusted proxies", trusted_proxies),
    Check("oauth.origins", "Sign-in form accepted only from the issuer's origins", signin_origins),
]
