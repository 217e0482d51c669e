"""Audit, masking and the gateway as they run: a valid chain with an off-box sink and enough retention, masking that
actually masks, and a protected route that refuses an anonymous request."""

from __future__ import annotations

from pathlib import Path

import grpc

from coresdk.config.gateway import load_routes
from coresdk.doctor.model import Check, Context, Status, fail, ok, warn
from coresdk.errors import ConfigError
from coresdk.v1 import masking_pb2, masking_pb2_grpc

# Minimum audit retention per compliance framework, in days.
RETENTION_DAYS = {"pci": 365, "hipaa": 6 * 365, "soc2": 365}
MASKING_PROBE = "contact carol@example.com, card 4111 1111 1111 1111"


def audit_chain(ctx: Context) -> tuple[Status, str, str]:
    status, report = ctx.json(f"{ctx.cp_url}/api/v1/audit?verify_chain=true&full=true", ctx.admin_headers())
    if status != 200 or not isinstance(report, dict):
        return fail(f"chain verification answered {status}", "give the doctor CORESDK_CP_URL and CPOD_ADMIN_TOKEN")
    if not report.get("chain_valid"):
        bad = report.get("first_bad", {})
        return fail(
            f"chain {bad.get('chain_id')} broken at seq {bad.get('seq')} ({bad.get('reason')})",
            "investigate now: compare with the off-box sink copy (coresdk audit verify)",
        )
    chains = report.get("chains", [])
    if not chains:
        return warn("no audit records yet", "run traffic through the sidecar, then check again")
    return ok(f"{report['records_checked']} records in {len(chains)} chain(s) verified")


def audit_offbox(ctx: Context) -> tuple[Status, str, str]:
    remote = [v for v in ("CORESDK_AUDIT_SYSLOG_ADDR", "CORESDK_AUDIT_HEC_URL") if ctx.get(v)]
    if remote:
        return ok(f"records and checkpoints shipped off the box via {', '.join(remote)}")
    if ctx.get("CORESDK_AUDIT_SINK_DIR"):
        return warn(
            f"only a directory sink ({ctx.get('CORESDK_AUDIT_SINK_DIR')})",
            "it is off-box only if that is a separate, append-only mount; prefer syslog or HEC",
        )
    return fail("no off-box audit sink", "set CORESDK_AUDIT_SYSLOG_ADDR or CORESDK_AUDIT_HEC_URL")


def audit_retention(ctx: Context) -> tuple[Status, str, str]:
    framework = ctx.get("CORESDK_COMPLIANCE_FRAMEWORK", "soc2").lower()
    if framework not in RETENTION_DAYS:
        return fail(
            f"unknown framework {framework!r}", f"set CORESDK_COMPLIANCE_FRAMEWORK to {', '.join(RETENTION_DAYS)}"
        )
    days = int(ctx.get("CORESDK_AUDIT_RETENTION_DAYS", "400"))
    needed = RETENTION_DAYS[framework]
    if days < needed:
        return fail(
            f"retention {days} d is below {framework.upper()}'s {needed} d",
            f"set CORESDK_AUDIT_RETENTION_DAYS to at least {needed}",
        )
    return ok(f"retention {days} d meets {framework.upper()} ({needed} d)")


def masking_active(ctx: Context) -> tuple[Status, str, str]:
    target = ctx.get("CORESDK_SIDECAR_ADDR", "[::1]:50051")
    with grpc.insecure_channel(target) as channel:
        stub = masking_pb2_grpc.MaskingServiceStub(channel)
        try:
            reply = stub.Mask(masking_pb2.MaskRequest(text=MASKING_PROBE), timeout=ctx.timeout)
        except grpc.RpcError as err:
            code = err.code().name if isinstance(err, grpc.Call) else "error"
            return fail(f"the sidecar's MaskingService did not answer ({code})", "start the sidecar")
    leaked = [v for v in ("carol@example.com", "4111 1111 1111 1111") if v in reply.text]
    if leaked:
        return fail(f"masking left {len(leaked)} value(s) in the clear", "check the masking policy")
    return ok(f"probe masked ({', '.join(sorted({f.entity_type for f in reply.findings}))})")


def gateway_url(ctx: Context) -> str:
    explicit = ctx.get("CORESDK_GATEWAY_URL")
    if explicit:
        return explicit.rstrip("/")
    host, _, port = ctx.get("CORESDK_GATEWAY_ADDR", "127.0.0.1:8000").rpartition(":")
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"


def gateway_routes(ctx: Context) -> tuple[Status, str, str]:
    path = Path(ctx.get("CORESDK_ROUTES_FILE", "config/routes.json"))
    try:
        routes = load_routes(path)
    except ConfigError as exc:
        return fail(str(exc), "fix the route map; the gateway refuses to start with it")
    return ok(f"{len(routes)} routes, each with a permission; unlisted routes are refused")


def _probe_route(ctx: Context) -> tuple[str, str]:
    """A GET route from the map; without a readable map, any path: the gateway authenticates before it routes."""
    try:
        routes = load_routes(Path(ctx.get("CORESDK_ROUTES_FILE", "config/routes.json")))
    except ConfigError:
        return "GET", "/coresdk-doctor-probe"
    route = next((r for r in routes if r.method == "GET"), routes[0])
    return route.method, route.path.replace("{", "").replace("}", "")


def gateway_authenticates(ctx: Context) -> tuple[Status, str, str]:
    method, path = _probe_route(ctx)
    spoofed = {"X-User-ID": "doctor", "X-Tenant-ID": "doctor"}
    status, _, headers = ctx.http(method, gateway_url(ctx) + path, spoofed)
    if status != 401:
        return fail(
            f"anonymous {method} {path} answered {status}, not 401",
            "every route must go through the gateway's authentication; never expose the upstream directly",
        )
    if "max-age=" not in headers.get("Strict-Transport-Security", ""):
        return fail("responses lack Strict-Transport-Security", "run the CoreSDK gateway in front of the app")
    return ok(f"anonymous {method} {path} with spoofed identity headers answered 401")


CHECKS = [
    Check("audit.chain", "Audit chain valid", audit_chain),
    Check("audit.offbox", "Audit shipped to an off-box sink", audit_offbox),
    Check("audit.retention", "Audit retention meets the compliance framework", audit_retention),
    Check("masking.active", "PII masking active in the sidecar", masking_active),
    Check("gateway.routes", "Route map valid", gateway_routes),
    Check("gateway.authenticates", "Protected routes refuse anonymous requests (401)", gateway_authenticates),
]
