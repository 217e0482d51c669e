"""The gateway's wiring: one pipeline (gateway.pipeline), two faces.

- proxy mode (default): every request is decided and, if allowed, forwarded (gateway.proxy) — to the control plane
  for the exact list of public OAuth endpoints, to the application for routes in the map, with identity headers
  from the verified token.
- authz mode (`CORESDK_GATEWAY_MODE=authz`): nginx's `auth_request` asks `GET /coresdk/authz` with the original
  method and URI, and gets the same decision as an answer (gateway.authz).

Per request: one canonical path (gateway.paths; anything with a second reading is 400) → size limit → decision →
forward or answer. Every answer the gateway makes itself is a typed refusal (gateway.refusals), audited before it
leaves; a forwarded answer is audited once the upstream's status is known. Nothing unaudited, nothing by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import unquote_plus

import aiohttp
from aiohttp import web

from coresdk import reasons
from coresdk.audit.record import new_record_id
from coresdk.config.gateway import GatewayConfig, load_gateway_config
from coresdk.engine import Engine
from coresdk.errors import CoreSDKError
from coresdk.masking.engine import Masker
from coresdk.runtime import listen, run_service, settle_after_start_up, stop_signal
from gateway.audit import RequestAuditor, RequestRecord
from gateway.authz import allowed_response, original_request, refusal_for_nginx
from gateway.body import BodyTooLarge, declared_too_large, whole_body
from gateway.decision import EngineDecider, refusal_of
from gateway.entitlement import EntitlementCheck
from gateway.mcp import McpGuard, McpRefusal, ToolDecision, refusal_calls
from gateway.paths import AmbiguousPath, Target, canonical_target
from gateway.pipeline import Pipeline, Verdict
from gateway.proxy import HSTS, Proxy
from gateway.quota import MemoryQuota, PostgresQuota, QuotaStore
from gateway.refusals import Refusal, refusal_response
from gateway.routes import RouteTable

log = logging.getLogger("coresdk.gateway")
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
AUTHZ_PATH = "/coresdk/authz"


class Gateway:
    """The parts one gateway process holds; started and stopped by the application's cleanup context."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.masker = Masker(None)
        self.quotas: QuotaStore = (
            PostgresQuota(config.quota_database_url)
            if config.quota_database_url
            else MemoryQuota(config.entitlements.plans)
        )
        self.engine = Engine(config.engine)
        # Every answer waits for its record; the thread handoff and wake-up cost more than the fsync at low
        # concurrency. Proxy mode: a group of one is written in the event loop, larger ones in the worker thread so
        # decisions and the upstream hop go on during the fsync; authz mode: every group in the loop (each measured
        # the faster at 16 in flight: ~3000 vs ~2600 req/s, and ~3600 vs ~3050).
        self.engine.audit.write_in_loop = 1 if config.mode != "authz" else sys.maxsize
        self.auditor = RequestAuditor(self.engine) if config.audit else None
        self.pipeline = Pipeline(
            RouteTable(config.routes),
            EngineDecider(self.engine),
            EntitlementCheck(config.entitlements, self.quotas),
            cp_configured=config.cp_url is not None,
        )
        self.proxy: Proxy | None = None
        self.mcp = (
            McpGuard(config.manifests, self.engine.authorizer, config.engine.admin_tenant_bypass, config.max_body_bytes)
            if config.manifests is not None
            else None
        )

    async def audited(self, record: RequestRecord, status: int) -> bool:
        if self.auditor is None:
            return True
        return await self.auditor.append(record, status)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # The upstream hop relays what the client sent and what the upstream answered: no cookie jar (one client's
        # cookies never reach another's request), no headers of aiohttp's own (User-Agent, Accept, Accept-Encoding),
        # bodies as they came (no decompression).
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        self.proxy = Proxy(session, self.config.max_body_bytes, self.config.trusted_proxies, self.audited)
        # Whatever started is stopped however the block ends: a start that fails later (an address taken) still
        # closes the engine's journal, its sessions and the quota pool, and the process exits with the error.
        async with contextlib.AsyncExitStack() as started:
            started.push_async_callback(session.close)
            started.push_async_callback(self.quotas.close)
            if isinstance(self.quotas, PostgresQuota):
                await self.quotas.start()
            started.push_async_callback(self.engine.stop)
            await self.engine.start()
            yield

    async def readyz(self, _: web.BaseRequest) -> web.Response:
        """503 until the engine can decide: every issuer's keys, the revocation feed and the audit journal ready."""
        checks = self.engine.readiness()
        ready = all(checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    def new_record(self, request: web.BaseRequest, method: str, raw_target: str) -> RequestRecord:
        # The raw target goes to the audit record: the sidecar masks metadata before hashing, so it is masked once.
        return RequestRecord(
            request_id=new_record_id(),  # a version-4 UUID, formatted without a UUID object
            method=method,
            target=unquote_plus(raw_target),
            ip=self.config.trusted_proxies.client_address(request.remote or "", request.headers),
        )

    async def refuse(self, refusal: Refusal, record: RequestRecord, nginx: bool = False) -> web.Response:
        """Audit, then answer: a refusal leaves only once its record is durable (or the audit itself failed)."""
        record.reason = refusal.reason
        if not await self.audited(record, refusal.status) and refusal.status < 500:
            log.error("refusal not audited request_id=%s status=%d", record.request_id, refusal.status)
        return refusal_for_nginx(refusal) if nginx else refusal_response(refusal)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Proxy mode."""
        record = self.new_record(request, request.method, request.raw_path)
        try:
            target = canonical_target(request.raw_path)
            if target.path == "/healthz" and request.method in ("GET", "HEAD"):
                return web.json_response({"status": "ok"})
            if target.path == "/readyz" and request.method in ("GET", "HEAD"):
                return await self.readyz(request)
            if declared_too_large(request, self.config.max_body_bytes):
                raise Refusal(413, "request_too_large", "body too large", reasons.BODY_TOO_LARGE)
            verdict = await self.pipeline.decide(request.method, target, request.headers, record)
            assert self.proxy is not None
            if verdict.identity is None:
                assert self.config.cp_url is not None
                return await self.proxy.forward(
                    request, self.config.cp_url, target, {"X-Request-ID": record.request_id}, record, True
                )
            self.log_forward(request.method, target, record)
            assert verdict.route is not None
            base = verdict.route.upstream or self.config.upstream_url
            if verdict.route.mcp_server is not None and request.method == "POST":
                return await self.forward_mcp(request, target, verdict, record, base)
            return await self.proxy.forward(request, base, target, verdict.identity.headers(record.request_id), record)
        except McpRefusal as refusal:
            record.reason, record.outcome = refusal.reason, "deny"
            await self.audited(record, refusal.status)
            return web.json_response(refusal.body, status=refusal.status)
        except AmbiguousPath as err:
            return await self.refuse(
                Refusal(400, "invalid_request", f"ambiguous request path: {err.message}", err.reason), record
            )
        except CoreSDKError as err:  # the engine could not judge (e.g. a tool call while keys are unavailable)
            return await self.refuse(refusal_of(err, "authorization"), record)
        except Refusal as refusal:
            return await self.refuse(refusal, record)

    async def forward_mcp(
        self, request: web.BaseRequest, target: Target, verdict: Verdict, record: RequestRecord, base: str
    ) -> web.StreamResponse:
        """An MCP endpoint: every JSON-RPC message judged (gateway.mcp), every tool call audited before anything is
        forwarded, the body forwarded exactly as it came, a tools/list answer filtered to what the caller may use."""
        assert self.proxy is not None and verdict.route is not None and verdict.identity is not None
        if self.mcp is None:
            raise Refusal(503, "temporarily_unavailable", "no tool manifests are configured", "MANIFESTS_MISSING")
        server = verdict.route.mcp_server
        assert server is not None
        try:
            raw = await whole_body(request, self.config.max_body_bytes)
        except BodyTooLarge as err:
            raise Refusal(413, "request_too_large", err.message, err.reason) from None
        try:
            plan = await self.mcp.check(server, verdict.token, record.request_id, raw)
        except McpRefusal as refusal:
            await self.audit_tool_calls(refusal_calls(refusal), record, server)
            raise
        if not await self.audit_tool_calls(plan.calls, record, server):
            raise Refusal(503, "temporarily_unavailable", "the audit trail is unavailable", "AUDIT_UNAVAILABLE")
        rewrite = None
        if plan.lists_tools:
            principal = await self.engine.validator.authenticate(verdict.token)
            mcp = self.mcp

            def rewrite(content_type: str, data: bytes) -> bytes:
                return mcp.filter_answer(server, principal, content_type, data)

        return await self.proxy.forward(
            request, base, target, verdict.identity.headers(record.request_id), record, body=raw, rewrite=rewrite
        )

    async def audit_tool_calls(self, calls: list[ToolDecision], record: RequestRecord, server: str) -> bool:
        if self.auditor is None or not calls:
            return True
        base = {"actor": record.actor, "tenant_id": record.tenant_id, "ip": record.ip}
        bodies = [self.engine.audit_body(McpGuard.audit_fields(c, record.request_id, server, base)) for c in calls]
        try:
            await self.engine.record(bodies)
        except CoreSDKError as err:
            log.error("tool call audit failed request_id=%s reason=%s", record.request_id, err.reason)
            return False
        return True

    async def decide_for_nginx(self, request: web.BaseRequest) -> web.StreamResponse:
        """Authz mode: GET /coresdk/authz from nginx's auth_request."""
        record = self.new_record(
            request, request.headers.get("X-Original-Method", "?"), request.headers.get("X-Original-URI", "")
        )
        try:
            method, uri = original_request(request)
            target = canonical_target(uri)
            verdict = await self.pipeline.decide(method, target, request.headers, record)
        except AmbiguousPath as err:
            refusal = Refusal(400, "invalid_request", f"ambiguous request path: {err.message}", err.reason)
            return await self.refuse(refusal, record, nginx=True)
        except Refusal as refusal:
            return await self.refuse(refusal, record, nginx=True)
        if not await self.audited(record, 200):
            return await self.refuse(
                Refusal(
                    503,
                    "temporarily_unavailable",
                    "the audit trail is unavailable",
                    "AUDIT_UNAVAILABLE",
                    {"Retry-After": "5"},
                ),
                record,
                nginx=True,
            )
        identity = (
            verdict.identity.headers(record.request_id) if verdict.identity else {"X-Request-ID": record.request_id}
        )
        return allowed_response(identity)

    def log_forward(self, method: str, target: Target, record: RequestRecord) -> None:
        if log.isEnabledFor(logging.INFO):  # logs never hold a detected value in the clear
            log.info(
                "forward method=%s route=%s target=%s user=%s tenant=%s request_id=%s",
                method,
                record.route,
                self.masker.mask_text(record.target)[0],
                record.actor,
                record.tenant_id,
                record.request_id,
            )


async def hardening(request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
    """Around every request: no exception and no stack trace leaves as such, and the gateway's own answers carry
    its security headers (a forwarded answer keeps the upstream's)."""
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        response = refusal_response(Refusal(413, "request_too_large", "body too large", reasons.BODY_TOO_LARGE))
    except web.HTTPException as exc:
        response = web.json_response(
            {"error": exc.reason.lower().replace(" ", "_"), "error_description": exc.reason},
            status=exc.status,
            headers={"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None,
        )
    except Exception:
        log.exception("unhandled gateway error path=%s", request.path)
        response = web.json_response({"error": "server_error", "error_description": "internal error"}, status=500)
    if not response.prepared:  # the gateway's own answers (forwarded ones keep the upstream's headers)
        response.headers["Strict-Transport-Security"] = HSTS
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def healthz(_: web.BaseRequest) -> web.Response:
    return web.json_response({"status": "ok"})


def build_handler(gateway: Gateway) -> Handler:
    """The one handler of aiohttp's low-level server: no application, router or middleware chain per request (~14
    µs of CPU each, measured). Proxy mode: every request to Gateway.handle; authz mode: three exact GET paths."""
    if gateway.config.mode != "authz":
        dispatch: Handler = gateway.handle
    else:
        routes: dict[str, Handler] = {
            "/healthz": healthz,
            "/readyz": gateway.readyz,
            AUTHZ_PATH: gateway.decide_for_nginx,
        }

        async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
            route = routes.get(request.path)
            if route is None:
                raise web.HTTPNotFound()
            if request.method not in ("GET", "HEAD"):
                raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
            return await route(request)

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return await hardening(request, dispatch)

    return handler


async def serve(config: GatewayConfig) -> None:
    stop = stop_signal()
    gateway = Gateway(config)
    async with gateway.running():
        server = web.Server(
            build_handler(gateway),
            access_log=None,
            handler_cancellation=True,
            max_line_size=config.max_header_bytes,
            max_field_size=config.max_header_bytes,
            max_headers=config.max_headers,
        )
        runner = web.ServerRunner(server)
        await runner.setup()
        await listen(runner, config.addr, "CORESDK_GATEWAY_ADDR")
        await _serving(config, stop)
        await runner.cleanup()


async def _serving(config: GatewayConfig, stop: asyncio.Event) -> None:
    settle_after_start_up()  # a gateway request leaves no cycles behind (measured with gc.DEBUG_SAVEALL)
    log.info(
        "gateway listening addr=%s mode=%s upstream=%s routes=%d audit=%s quotas=%s",
        config.addr,
        config.mode,
        config.upstream_url,
        len(config.routes),
        config.audit_chain if config.audit else "off",
        "postgresql" if config.quota_database_url else "memory",
    )
    await stop.wait()


def main(environ: Mapping[str, str] | None = None) -> int:
    return run_service("gateway", load_gateway_config, serve, environ)
