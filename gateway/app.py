"""The gateway: every route authenticated and authorized through the sidecar, then proxied (streaming) upstream.

Order per request: one canonical path (gateway.paths: anything with a second reading is 400) → size limits →
public routes (health; the exact list of OAuth endpoints, discovery and JWKS forwarded to the control plane) →
Authenticate + Authorize from the route map (sidecar) → quota → forward exactly the matched path, with identity
headers taken from the verified token and the client's address stated by the gateway (gateway.headers). A route
missing from the map is 404; a sidecar that cannot answer is 503 — never a pass-through.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

import aiohttp
import grpc
from aiohttp import web
from yarl import URL

from coresdk import reasons
from coresdk.client import error_reason
from coresdk.config.gateway import GatewayConfig, Route, load_gateway_config, route_pattern
from coresdk.errors import Unavailable
from coresdk.masking.engine import Masker
from coresdk.runtime import listen, run_service, stop_signal
from coresdk.v1 import auth_pb2, auth_pb2_grpc, common_pb2, policy_pb2, policy_pb2_grpc
from gateway.audit import RequestAuditor, RequestRecord
from gateway.body import BodyTooLarge, bounded_body, declared_too_large
from gateway.headers import HOP_BY_HOP, upstream_headers
from gateway.paths import AmbiguousPath, Target, canonical_target
from gateway.public_routes import allowed_methods, control_plane_route
from gateway.quota import MemoryQuota, PostgresQuota, QuotaStore

log = logging.getLogger("coresdk.gateway")
HSTS = "max-age=63072000; includeSubDomains"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, description: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status, headers=headers)


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


def compile_routes(routes: tuple[Route, ...]) -> list[CompiledRoute]:
    return [CompiledRoute(r, route_pattern(r.path)) for r in routes]


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.routes = compile_routes(config.routes)
        self.masker = Masker(None)
        self.quotas: QuotaStore = (
            PostgresQuota(config.quota_database_url)
            if config.quota_database_url
            else MemoryQuota(config.entitlements.plans)
        )
        self.channel: grpc.aio.Channel | None = None
        self.session: aiohttp.ClientSession | None = None
        self.auditor: RequestAuditor | None = None

    def match(self, method: str, path: str) -> Route | None:
        for c in self.routes:
            if c.route.method == method and c.pattern.fullmatch(path):
                return c.route
        return None

    async def start(self) -> None:
        self.channel = grpc.aio.insecure_channel(self.config.sidecar_addr)
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds), auto_decompress=False
        )
        if self.config.audit:
            self.auditor = RequestAuditor(self.channel, self.config.audit_chain)
        if isinstance(self.quotas, PostgresQuota):
            await self.quotas.start()

    async def stop(self) -> None:
        await self.quotas.close()
        if self.session is not None:
            await self.session.close()
        if self.channel is not None:
            await self.channel.close()

    @staticmethod
    def bearer(request: web.Request, record: RequestRecord) -> str | web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme != "Bearer" or not token or " " in token or len(token) > 16384:
            record.reason = reasons.TOKEN_MISSING
            return error(
                401, "invalid_token", "a Bearer token is required", {"WWW-Authenticate": 'Bearer realm="coresdk"'}
            )
        return token

    @staticmethod
    def refused(err: grpc.aio.AioRpcError, record: RequestRecord, what: str) -> web.Response:
        """One mapping of sidecar errors: a bad token is 401, a bad request 403, anything else an outage (503)."""
        reason = error_reason(err) or err.code().name
        record.reason = reason
        if err.code() == grpc.StatusCode.INVALID_ARGUMENT and reason in ("TENANT_REQUIRED", "INVALID_PERMISSION"):
            return error(403, "forbidden", f"request refused ({reason})")
        if err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT):
            return error(
                401,
                "invalid_token",
                f"token refused ({reason})",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        log.warning("sidecar unavailable for %s: %s %s", what, err.code().name, reason)
        return error(503, "temporarily_unavailable", f"{what} is unavailable", {"Retry-After": "5"})

    async def authenticate(self, token: str, record: RequestRecord) -> common_pb2.Principal | web.Response:
        """Only for requests no route matches: they get 401 without a valid token, 404 with one."""
        assert self.channel is not None
        try:
            stub = auth_pb2_grpc.AuthServiceStub(self.channel)  # type: ignore[no-untyped-call]
            principal: common_pb2.Principal = await stub.Authenticate(
                auth_pb2.AuthenticateRequest(token=token), timeout=3
            )
            return principal
        except grpc.aio.AioRpcError as err:
            return self.refused(err, record, "authentication")

    async def authorize(self, token: str, route: Route, record: RequestRecord) -> common_pb2.Principal | web.Response:
        """Authenticate and authorize in one round trip, in the token's own tenant."""
        assert self.channel is not None
        try:
            stub = policy_pb2_grpc.PolicyServiceStub(self.channel)  # type: ignore[no-untyped-call]
            decision = await stub.Authorize(
                policy_pb2.AuthorizeRequest(
                    token=token,
                    resource=route.resource,
                    action=route.action,
                    tenant_from_token=True,
                    request_id=record.request_id,
                ),
                timeout=3,
            )
        except grpc.aio.AioRpcError as err:
            return self.refused(err, record, "authorization")
        principal: common_pb2.Principal = decision.principal
        record.actor, record.tenant_id, record.client_id = principal.subject, principal.tenant_id, principal.client_id
        record.reason = decision.reason
        record.extra["decision_id"] = decision.decision_id
        if not decision.allowed:
            return error(403, "forbidden", f"not allowed ({decision.reason})")
        return principal

    async def entitled(self, tenant_id: str, record: RequestRecord) -> web.Response | None:
        """Plan and quota of the tenant; no plan, or any failure to decide, refuses (fail closed)."""
        ent = self.config.entitlements
        name = ent.tenants.get(tenant_id) or ent.default_plan
        if name is None:
            record.reason = "NO_ENTITLEMENT"
            return error(403, "no_entitlement", "this tenant has no plan")
        try:
            wait = await self.quotas.take(ent.plans[name], tenant_id)
        except Unavailable as err:
            record.reason = err.reason
            log.error("entitlement check failed reason=%s: %s", err.reason, err)
            return error(503, "temporarily_unavailable", "the entitlement check failed", {"Retry-After": "5"})
        except Exception:
            record.reason = "QUOTA_ERROR"
            log.exception("entitlement check failed")
            return error(503, "temporarily_unavailable", "the entitlement check failed", {"Retry-After": "5"})
        if wait is not None:
            record.reason = "QUOTA_EXCEEDED"
            return error(429, "quota_exceeded", f"plan {name} quota exceeded", {"Retry-After": str(wait)})
        return None

    async def audited(self, record: RequestRecord, status: int) -> bool:
        if self.auditor is None:
            return True
        return await self.auditor.append(record, status)

    async def forward(
        self,
        request: web.Request,
        base: str,
        target: Target,
        identity: Mapping[str, str],
        record: RequestRecord,
        keep_authorization: bool = False,
    ) -> web.StreamResponse:
        """Send exactly the matched target upstream; keep_authorization only for the control plane (client auth).

        The audit record is written once the upstream's status is known and before its body is relayed; a record
        that cannot be written turns the answer into 503 instead of an unaudited success."""
        assert self.session is not None
        try:
            body = await bounded_body(request, self.config.max_body_bytes)
        except BodyTooLarge as err:
            record.reason = err.reason
            return error(413, "request_too_large", err.message)
        peer = request.remote or ""
        trusted = self.config.trusted_proxies.trusts(peer)
        sent_proto = request.headers.get("X-Forwarded-Proto", "")
        headers = upstream_headers(
            request.headers,
            identity,
            client=record.ip,
            proto=sent_proto if trusted and sent_proto in ("http", "https") else request.scheme,
            host=request.headers.get("Host", ""),
            keep_authorization=keep_authorization,
        )
        # encoded=True: yarl must not re-normalise (no dot removal, no re-quoting): the bytes matched are the bytes sent
        url = URL(base + target.raw, encoded=True)
        relayed = False
        try:
            async with self.session.request(
                request.method, url, headers=headers, data=body, allow_redirects=False
            ) as upstream:
                if not await self.audited(record, upstream.status):
                    return error(503, "temporarily_unavailable", "the audit trail is unavailable", {"Retry-After": "5"})
                relayed = True
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for k, v in upstream.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        response.headers.add(k, v)
                response.headers["Strict-Transport-Security"] = HSTS
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(65536):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("upstream unavailable: %s", type(exc).__name__)
            if relayed:  # the status is already audited and on its way; the connection is cut
                raise
            record.outcome, record.reason = "error", "UPSTREAM_UNAVAILABLE"
            await self.audited(record, 502)
            return error(502, "bad_gateway", "the upstream did not answer")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.remote or ""
        # The raw target goes to the audit record: the sidecar masks metadata before hashing, so it is masked once.
        record = RequestRecord(
            request_id=str(uuid.uuid4()),
            method=request.method,
            target=unquote_plus(request.raw_path),
            ip=self.config.trusted_proxies.client_address(peer, request.headers),
        )
        try:
            target = canonical_target(request.raw_path)
        except AmbiguousPath as err:
            record.reason = err.reason
            response: web.StreamResponse = error(400, "invalid_request", f"ambiguous request path: {err.message}")
        else:
            if target.path == "/healthz" and request.method in ("GET", "HEAD"):
                return web.json_response({"status": "ok"})
            if declared_too_large(request, self.config.max_body_bytes):
                record.reason = reasons.BODY_TOO_LARGE
                response = error(413, "request_too_large", "body too large")
            else:
                response = await self.decide_and_forward(request, target, record)
        if not response.prepared:  # a refusal made here: audit it before it leaves
            await self.audited(record, response.status)
        return response

    async def decide_and_forward(
        self, request: web.Request, target: Target, record: RequestRecord
    ) -> web.StreamResponse:
        path = target.path
        if control_plane_route(request.method, path):
            if self.config.cp_url is None:
                record.reason = "NO_CONTROL_PLANE"
                return error(404, "not_found", "no control plane is configured")
            record.route, record.outcome, record.reason = path, "public", "PUBLIC_ROUTE"
            return await self.forward(
                request,
                self.config.cp_url,
                target,
                {"X-Request-ID": record.request_id},
                record,
                keep_authorization=True,
            )
        if allowed_methods(path):
            record.reason = "METHOD_NOT_ALLOWED"
            return error(405, "method_not_allowed", "method not allowed", {"Allow": ", ".join(allowed_methods(path))})
        route = self.match(request.method, path)
        token = self.bearer(request, record)
        if isinstance(token, web.Response):
            return token
        if route is None:
            found = await self.authenticate(token, record)
            if isinstance(found, web.Response):
                return found
            record.actor, record.tenant_id, record.client_id = found.subject, found.tenant_id, found.client_id
            record.reason = "ROUTE_NOT_FOUND"
            return error(404, "not_found", "no such route")
        record.route = route.path
        authenticated = await self.authorize(token, route, record)
        if isinstance(authenticated, web.Response):
            return authenticated
        refused = await self.entitled(authenticated.tenant_id, record)
        if refused is not None:
            return refused
        record.outcome = "allow"
        identity = {
            "X-User-ID": authenticated.subject,
            "X-Tenant-ID": authenticated.tenant_id,
            "X-Scopes": " ".join(authenticated.scopes),
            "X-Request-ID": record.request_id,
        }
        if log.isEnabledFor(logging.INFO):  # logs never hold a detected value in the clear
            log.info(
                "forward method=%s route=%s target=%s user=%s tenant=%s request_id=%s",
                request.method,
                route.path,
                self.masker.mask_text(record.target)[0],
                authenticated.subject,
                authenticated.tenant_id,
                record.request_id,
            )
        return await self.forward(request, self.config.upstream_url, target, identity, record)


@web.middleware
async def hardening(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        response = error(413, "request_too_large", "body too large")
    except web.HTTPException as exc:
        response = error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unhandled gateway error path=%s", request.path)
        response = error(500, "server_error", "internal error")
    if not response.prepared:  # the gateway's own answers (forwarded ones keep the upstream's headers)
        response.headers["Strict-Transport-Security"] = HSTS
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def build_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[hardening], client_max_size=gateway.config.max_body_bytes)

    async def entry(request: web.Request) -> web.StreamResponse:
        return await gateway.handle(request)

    app.router.add_route("*", "/{tail:.*}", entry)
    return app


async def serve(config: GatewayConfig) -> None:
    stop = stop_signal()
    gateway = Gateway(config)
    await gateway.start()
    runner = web.AppRunner(
        build_app(gateway),
        access_log=None,
        handler_cancellation=True,
        max_line_size=config.max_header_bytes,
        max_field_size=config.max_header_bytes,
        max_headers=config.max_headers,
    )
    await runner.setup()
    await listen(runner, config.addr, "CORESDK_GATEWAY_ADDR")
    log.info(
        "gateway listening addr=%s upstream=%s routes=%d audit=%s quotas=%s",
        config.addr,
        config.upstream_url,
        len(config.routes),
        config.audit_chain if config.audit else "off",
        "postgresql" if config.quota_database_url else "memory",
    )
    await stop.wait()
    await runner.cleanup()
    await gateway.stop()


def main(environ: Mapping[str, str] | None = None) -> int:
    return run_service("gateway", load_gateway_config, serve, environ)
