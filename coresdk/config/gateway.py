"""The gateway's settings, read once and validated at start (routes file included)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coresdk.audit import chain_id as chain_ids
from coresdk.config.engine import AuditSettings, EngineConfig, load_engine_config
from coresdk.config.env import Env, plaintext_hosts, split_host_port, validate_fetch_url
from coresdk.config.manifests import load_manifest_trust
from coresdk.errors import ConfigError
from coresdk.mcp.manifest import TrustStore
from coresdk.proxies import TrustedProxies, parse_trusted_proxies
from coresdk.roles import KNOWN_ACTIONS

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_PERMISSION = re.compile(r"[a-z][a-z0-9_.-]{0,63}:[a-z][a-z0-9_.-]{0,63}")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_ROUTE_KEYS = {"method", "path", "permission", "mcp", "upstream"}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # exact, or with {name} segments
    resource: str
    action: str
    mcp_server: str | None = None  # an MCP endpoint of this server (the name its tool manifests carry)
    upstream: str | None = None  # forwarded here instead of CORESDK_UPSTREAM_URL


@dataclass(frozen=True)
class Plan:
    name: str
    requests_per_minute: int
    burst: int


@dataclass(frozen=True)
class Entitlements:
    plans: dict[str, Plan]
    tenants: dict[str, str]  # tenant → plan name
    default_plan: str | None  # plan of tenants not listed; None: unlisted tenants are refused


@dataclass(frozen=True)
class GatewayConfig:
    addr: str
    upstream_url: str
    engine: EngineConfig  # token validation, authorization and the gateway's own audit journal, in process
    cp_url: str | None
    routes: tuple[Route, ...]
    entitlements: Entitlements
    max_body_bytes: int
    timeout_seconds: float
    max_header_bytes: int = 8190
    max_headers: int = 100
    audit: bool = True  # one record per request in the gateway's own chain
    audit_chain: str = "gateway"
    quota_database_url: str | None = None  # PostgreSQL shared by every replica; None: in memory
    # peers whose Forwarded / X-Forwarded-For is believed
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    mode: str = "proxy"  # proxy: decide and forward; authz: only nginx auth_request decisions
    manifests: TrustStore | None = None  # signed tool manifests; required when a route is an MCP endpoint


def load_routes(path: Path, plaintext: frozenset[str] = frozenset()) -> tuple[Route, ...]:
    var = "CORESDK_ROUTES_FILE"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(var, f"cannot read JSON from {path}: {exc}") from None
    sections = {"routes", "resources", "plans", "tenants", "default_plan"}
    if isinstance(doc, dict) and set(doc) - sections:
        raise ConfigError(var, f"unknown section(s): {', '.join(sorted(set(doc) - sections))}")
    resources = doc.get("resources") if isinstance(doc, dict) else None
    if resources is not None and (
        not isinstance(resources, list) or not all(isinstance(r, str) and _NAME.fullmatch(r) for r in resources)
    ):
        raise ConfigError(var, "resources must be a list of lower-case resource names")
    entries = doc.get("routes") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(var, 'must be {"routes": [{"method", "path", "permission"}, ...]}')
    routes: list[Route] = []
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not {"method", "path", "permission"} <= set(e) <= _ROUTE_KEYS:
            raise ConfigError(var, f"routes[{i}] needs method, path, permission (and optionally mcp, upstream)")
        mcp = e.get("mcp")
        if mcp is not None and (not isinstance(mcp, str) or not _NAME.fullmatch(mcp)):
            raise ConfigError(var, f"routes[{i}].mcp must name the MCP server (the server of its tool manifests)")
        upstream_override = e.get("upstream")
        if upstream_override is not None:
            if not isinstance(upstream_override, str):
                raise ConfigError(var, f"routes[{i}].upstream must be a URL")
            upstream_override = validate_fetch_url(upstream_override, f"{var} routes[{i}].upstream", plaintext).rstrip(
                "/"
            )
        method, rpath, perm = e["method"], e["path"], e["permission"]
        if method not in _METHODS:
            raise ConfigError(var, f"routes[{i}].method {method!r} is not an HTTP method")
        if not isinstance(rpath, str) or not rpath.startswith("/") or "*" in rpath:
            raise ConfigError(var, f"routes[{i}].path must be an absolute path without wildcards")
        if not isinstance(perm, str) or not _PERMISSION.fullmatch(perm):
            raise ConfigError(var, f"routes[{i}].permission {perm!r} must be resource:action")
        shape = (method, re.sub(r"\{[^/]+\}", "{}", rpath))
        if shape in seen:
            raise ConfigError(var, f"routes[{i}] overlaps an earlier route ({method} {rpath})")
        seen.add(shape)
        resource, action = perm.split(":")
        if action not in KNOWN_ACTIONS:
            raise ConfigError(
                var, f"routes[{i}].permission {perm!r}: no role grants {action!r} ({', '.join(sorted(KNOWN_ACTIONS))})"
            )
        if resources is not None and resource not in resources:
            raise ConfigError(var, f"routes[{i}].permission {perm!r} names a resource not listed in resources")
        sample = re.sub(r"\{[^/]+\}", "x", rpath)
        for earlier in routes:
            if earlier.method == method and route_pattern(earlier.path).fullmatch(sample):
                raise ConfigError(
                    var, f"routes[{i}] ({method} {rpath}) is unreachable: {earlier.path} listed earlier matches it"
                )
        routes.append(Route(method, rpath, resource, action, mcp, upstream_override))
    return tuple(routes)


def route_pattern(path: str) -> re.Pattern[str]:
    """A route path with {name} segments as a regular expression; the gateway matches requests with the same."""
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^/]+\})", path))
    return re.compile(regex)


def load_entitlements(path: Path) -> Entitlements:
    """Plans and tenant → plan from the routes file. Without a "plans" section every tenant gets an unlimited plan."""
    var = "CORESDK_ROUTES_FILE"
    doc = json.loads(path.read_text())
    plans_doc, tenants_doc = doc.get("plans"), doc.get("tenants", {})
    default = doc.get("default_plan")
    if plans_doc is None:
        return Entitlements({"unlimited": Plan("unlimited", 10**9, 10**9)}, {}, "unlimited")
    if not isinstance(plans_doc, dict) or not plans_doc:
        raise ConfigError(var, "plans must be an object of name → {requests_per_minute, burst}")
    plans = {}
    for name, p in plans_doc.items():
        if not isinstance(p, dict) or set(p) != {"requests_per_minute", "burst"}:
            raise ConfigError(var, f"plan {name!r} needs exactly requests_per_minute and burst")
        rpm, burst = p["requests_per_minute"], p["burst"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (rpm, burst)):
            raise ConfigError(var, f"plan {name!r}: requests_per_minute and burst must be positive integers")
        plans[name] = Plan(name, rpm, burst)
    if not isinstance(tenants_doc, dict) or any(not isinstance(v, str) or v not in plans for v in tenants_doc.values()):
        raise ConfigError(var, "tenants must map tenant ids to plan names defined in plans")
    if default is not None and default not in plans:
        raise ConfigError(var, f"default_plan {default!r} is not a defined plan")
    return Entitlements(plans, dict(tenants_doc), default)


def _quota_dsn(env: Env) -> str | None:
    dsn = env.raw("CORESDK_QUOTA_DATABASE_URL")
    if dsn is not None and not dsn.startswith(("postgres://", "postgresql://")):
        raise ConfigError("CORESDK_QUOTA_DATABASE_URL", "must be a postgresql:// URL")
    return dsn


def load_gateway_config(environ: Mapping[str, str]) -> GatewayConfig:
    env = Env(environ)
    addr = env.text("CORESDK_GATEWAY_ADDR", "127.0.0.1:8000") or "127.0.0.1:8000"
    split_host_port(addr, "CORESDK_GATEWAY_ADDR")
    mode = env.choice("CORESDK_GATEWAY_MODE", "proxy", ("proxy", "authz"))
    # nginx does the proxying in authz mode: the gateway only answers its auth_request subrequests
    upstream = (
        env.fetch_url(env.required("CORESDK_UPSTREAM_URL"), "CORESDK_UPSTREAM_URL")
        if mode == "proxy"
        else env.fetch_url(env.raw("CORESDK_UPSTREAM_URL") or "http://127.0.0.1:1", "CORESDK_UPSTREAM_URL")
    )
    cp = env.raw("CORESDK_CP_URL")
    chain = env.text("CORESDK_GATEWAY_AUDIT_CHAIN", f"gateway-{socket.gethostname()}") or "gateway"
    if not chain_ids.is_valid(chain):
        raise ConfigError("CORESDK_GATEWAY_AUDIT_CHAIN", chain_ids.problem(chain))
    data_dir = Path(env.text("CORESDK_DATA_DIR", ".coresdk-data") or ".coresdk-data")
    audit_dir = env.text("CORESDK_GATEWAY_AUDIT_DIR", str(data_dir / "gateway-audit")) or data_dir / "gateway-audit"
    # the same engine settings as the sidecar's (issuers, token policy, revocations, Rego, decisions audited), with
    # the gateway's own chain and journal, shipped with its own credential (CORESDK_CP_TOKEN)
    engine = load_engine_config(
        env,
        AuditSettings(
            directory=Path(audit_dir),
            segment_bytes=env.integer("CORESDK_AUDIT_SEGMENT_BYTES", 64 * 1024 * 1024, minimum=4096, maximum=2**34),
            default_chain=chain,
            directory_variable=(
                "CORESDK_DATA_DIR" if Path(audit_dir) == data_dir / "gateway-audit" else "CORESDK_GATEWAY_AUDIT_DIR"
            ),
        ),
    )
    routes_file = Path(env.text("CORESDK_ROUTES_FILE", "config/routes.json") or "config/routes.json")
    if not routes_file.is_file():
        raise ConfigError("CORESDK_ROUTES_FILE", f"file not found: {routes_file}")
    routes = load_routes(routes_file, plaintext_hosts(env))
    # fail closed: a gateway in front of MCP servers refuses to start without the manifests that approve their tools
    manifests = load_manifest_trust(environ, required=any(r.mcp_server for r in routes))
    return GatewayConfig(
        manifests=manifests,
        addr=addr,
        upstream_url=upstream.rstrip("/"),
        engine=engine,
        cp_url=env.fetch_url(cp, "CORESDK_CP_URL").rstrip("/") if cp else None,
        routes=routes,
        entitlements=load_entitlements(routes_file),
        max_body_bytes=env.integer("CORESDK_GATEWAY_MAX_BODY", 1024 * 1024, minimum=1024, maximum=1 << 30),
        timeout_seconds=env.number("CORESDK_GATEWAY_TIMEOUT", 30.0, minimum=0.5, maximum=600.0),
        max_header_bytes=env.integer("CORESDK_GATEWAY_MAX_HEADER_BYTES", 8190, minimum=1024, maximum=65536),
        max_headers=env.integer("CORESDK_GATEWAY_MAX_HEADERS", 100, minimum=10, maximum=1000),
        audit=env.flag("CORESDK_GATEWAY_AUDIT", True),
        audit_chain=chain,
        quota_database_url=_quota_dsn(env),
        trusted_proxies=parse_trusted_proxies(env.raw("CORESDK_TRUSTED_PROXIES")),
        mode=mode,
    )
