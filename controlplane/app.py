"""Control plane wiring (aiohttp): store → keys → OAuth endpoints, admin API, discovery, JWKS.

Errors are mapped to JSON exactly once, in the middleware: OAuth errors per RFC 6749 §5.2, API errors with the
same shape, an unreachable database as 503. No stack trace leaves the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlplane.admin import api as admin
from controlplane.admin import replica, sidecars
from controlplane.audit import api as audit_api
from controlplane.audit import retention
from controlplane.audit.checkpoints import Checkpointer, checkpoint_key
from controlplane.audit.sinks import DirectorySink, HecSink, Sink, SyslogSink
from controlplane.audit.verify import Verifier
from controlplane.discovery import jwks, metadata
from controlplane.http import TRUSTED_PROXIES
from controlplane.keys.manager import KeyManager
from controlplane.keys.signer import ProcessSigners, SignerUnavailable, default_processes
from controlplane.oauth.authorize import authorize
from controlplane.oauth.context import AuditRuntime, Context, ControlPlaneMetrics, Limiter
from controlplane.oauth.errors import ApiError, OAuthError, error_response
from controlplane.oauth.introspect import introspect
from controlplane.oauth.issue import TokenIssuer
from controlplane.oauth.revoke import logout, revoke
from controlplane.oauth.token import token_endpoint
from controlplane.secrets import ServerKeys
from controlplane.store.audit import AuditStore
from controlplane.store.db import Database, StoreUnavailable, open_database
from controlplane.store.leader import Leadership
from controlplane.store.migrations import migrate
from controlplane.store.rate_limits import rate_buckets
from controlplane.store.store import Store
from controlplane.web.pages import REFERRER_POLICY
from coresdk.config.controlplane import ControlPlaneConfig, RateLimits, load_controlplane_config
from coresdk.errors import ConfigError
from coresdk.runtime import listen, run_service, settle_after_start_up, stop_signal

log = logging.getLogger("coresdk.controlplane")
HOUSEKEEPING_EVERY = 60.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The public OAuth endpoints answer within this, whatever the store does (a partition: connections open, no bytes):
# past it the request is abandoned with 503 temporarily_unavailable instead of the driver's timeouts added up.
# Admin and audit routes are not bounded: a prune or a verification of a long chain may take longer.
OAUTH_DEADLINE = 8.0
_BOUNDED = frozenset({"/v1/oauth/token", "/v1/oauth/revoke", "/v1/oauth/introspect", "/v1/oauth/logout"})


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    deadline = asyncio.timeout(OAUTH_DEADLINE if request.path in _BOUNDED else None)
    try:
        async with deadline:
            return await handler(request)
    except TimeoutError:
        if not deadline.expired():
            log.exception("unhandled error path=%s", request.path)
            return error_response(500, "server_error", "internal error")
        log.error("request abandoned after %.0f s path=%s (the store did not answer)", OAUTH_DEADLINE, request.path)
        return error_response(503, "temporarily_unavailable", "the store did not answer in time", {"Retry-After": "5"})
    except OAuthError as err:
        return error_response(err.status, err.error, err.description, err.headers)
    except ApiError as err:
        return error_response(err.status, err.error, err.description, err.headers)
    except StoreUnavailable:
        log.error("store unavailable path=%s", request.path)
        return error_response(503, "temporarily_unavailable", "the store is unavailable", {"Retry-After": "5"})
    except SignerUnavailable as exc:
        log.error("signer unavailable path=%s: %s", request.path, exc)
        return error_response(503, "temporarily_unavailable", "the token could not be signed", {"Retry-After": "1"})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unhandled error path=%s", request.path)
        return error_response(500, "server_error", "internal error")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTML pages set their own (controlplane.web.pages); every other answer is data and may be nothing else."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", REFERRER_POLICY)
    response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def build_app(ctx: Context) -> web.Application:
    app = web.Application(middlewares=[security_headers, errors_middleware], client_max_size=ctx.config.max_body_bytes)
    app["ctx"] = ctx
    app[TRUSTED_PROXIES] = ctx.config.trusted_proxies

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(request: web.Request) -> web.Response:
        admin.require_admin(request)
        return web.Response(body=generate_latest(ctx.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/api/v1/jwks", jwks)
    r.add_get("/.well-known/jwks.json", jwks)
    r.add_get("/.well-known/oauth-authorization-server", metadata)
    r.add_route("GET", "/v1/oauth/authorize", authorize)
    r.add_route("POST", "/v1/oauth/authorize", authorize)
    r.add_post("/v1/oauth/token", token_endpoint)
    r.add_post("/v1/oauth/revoke", revoke)
    r.add_post("/v1/oauth/logout", logout)
    r.add_post("/v1/oauth/introspect", introspect)
    r.add_post("/v1/oauth/apps", admin.create_app)
    r.add_get("/v1/oauth/apps", admin.list_apps)
    r.add_get("/v1/oauth/apps/{app_id}", admin.get_app)
    r.add_patch("/v1/oauth/apps/{app_id}", admin.patch_app)
    r.add_delete("/v1/oauth/apps/{app_id}", admin.delete_app)
    r.add_post("/v1/oauth/apps/{app_id}/rotate-secret", admin.rotate_secret)
    r.add_post("/v1/users", admin.create_user)
    r.add_get("/v1/users", admin.list_users)
    r.add_delete("/v1/users/{user_id}", admin.delete_user)
    r.add_get("/api/v1/token-events", admin.token_events)
    r.add_get("/api/v1/revocations", admin.revocations)
    r.add_get("/api/v1/keys", admin.list_keys)
    r.add_post("/api/v1/keys/rotate", admin.rotate_keys)
    r.add_post("/api/v1/audit/ingest", audit_api.ingest)
    r.add_get("/api/v1/audit", audit_api.audit_records)
    r.add_get("/api/v1/audit/export", audit_api.export)
    r.add_get("/api/v1/audit/checkpoint", audit_api.checkpoint)
    r.add_get("/api/v1/audit/checkpoint-key", audit_api.checkpoint_key)
    r.add_get("/api/v1/audit/proof/inclusion", audit_api.inclusion_proof)
    r.add_get("/api/v1/audit/proof/consistency", audit_api.consistency_proof)
    r.add_get("/api/v1/audit/alerts", audit_api.alerts)
    r.add_post("/api/v1/audit/prune", audit_api.prune)
    sidecars.add_routes(r)
    replica.add_routes(r)
    return app


def _dev_key_path(config: ControlPlaneConfig) -> Path:
    """The generated development key: one file per kind of key, so switching CORESDK_SIGNING_ALG in development
    between RSA and EC finds a matching file (RS256 and PS256 share the RSA one, as they share RSA keys)."""
    return config.data_dir / ("signing-key-es256.pem" if config.signing_alg == "ES256" else "signing-key.pem")


def build_sinks(config: ControlPlaneConfig) -> list[Sink]:
    sinks: list[Sink] = []
    if config.audit.sink_dir is not None:
        sinks.append(DirectorySink(config.audit.sink_dir))
    if config.audit.syslog_addr is not None:
        sinks.append(SyslogSink(*config.audit.syslog_addr))
    if config.audit.hec_url is not None and config.audit.hec_token is not None:
        sinks.append(HecSink(config.audit.hec_url, config.audit.hec_token))
    return sinks


async def build_context(config: ControlPlaneConfig) -> Context:
    """Everything the routes need; a failure after the database is open closes it again (an open aiosqlite
    connection is a thread that would keep a process that failed its start from ever exiting)."""
    db = await open_database(config.database_url)
    try:
        return await _context_on(db, config)
    except BaseException:
        await db.close()
        raise


async def _context_on(db: Database, config: ControlPlaneConfig) -> Context:
    applied = await migrate(db)
    if applied:
        log.info("migrations applied versions=%s", applied)
    store = Store(db)
    server_keys = ServerKeys(config.server_secret)
    keys = KeyManager(store, server_keys, config.key_activation_delay, config.signing_alg)
    await keys.start(config.signing_key_path, _dev_key_path(config) if config.development else None)
    limits = config.rate_limits
    buckets = rate_buckets(db, longest_refill_seconds=_longest_refill(limits))
    leadership = Leadership(db)
    audit_store = AuditStore(db)
    checkpointer = Checkpointer(
        audit_store,
        checkpoint_key(config.server_secret),
        config.audit.key_name,
        config.audit.checkpoint_every_records,
        config.audit.checkpoint_every_seconds,
        build_sinks(config),
        leadership,
    )
    return Context(
        audit=AuditRuntime(audit_store, checkpointer, Verifier(audit_store, checkpointer)),
        config=config,
        store=store,
        server_keys=server_keys,
        keys=keys,
        issuer=TokenIssuer(config, keys, server_keys, ProcessSigners(default_processes())),
        metrics=ControlPlaneMetrics(),
        client_limiter=Limiter("client", limits.client_per_second, limits.client_burst, buckets),
        ip_limiter=Limiter("ip", limits.ip_per_second, limits.ip_burst, buckets),
        login_limiter=Limiter("login", limits.login_per_minute / 60.0, limits.login_per_minute, buckets),
        login_user_limiter=Limiter(
            "login-user", limits.login_user_per_minute / 60.0, limits.login_user_per_minute, buckets
        ),
        leadership=leadership,
        buckets=buckets,
    )


def _longest_refill(limits: RateLimits) -> float:
    """How long the slowest bucket takes to refill from empty: a bucket untouched for longer is full."""
    return max(limits.client_burst / limits.client_per_second, limits.ip_burst / limits.ip_per_second, 60.0)


async def _housekeeping(ctx: Context) -> None:
    """The leader's periodic work besides checkpoints: audit retention once a day, full rate buckets forgotten."""
    next_retention = time.monotonic() + 60
    while True:
        await asyncio.sleep(HOUSEKEEPING_EVERY)
        try:
            if not await ctx.audit.checkpointer.leading():
                continue
            await ctx.buckets.prune()
            if time.monotonic() >= next_retention:
                next_retention = time.monotonic() + 86400
                for item in await retention.prune(
                    ctx.audit.store, ctx.audit.checkpointer, ctx.config.audit.retention_days
                ):
                    log.info("audit retention pruned %s", item)
        except Exception:
            log.exception("housekeeping run failed")


async def serve(config: ControlPlaneConfig) -> None:
    """Start, serve until SIGTERM/SIGINT, stop. Whatever has started is stopped again in reverse order however the
    start ends, so a configuration error found late (an address in use) still exits at once with status 2."""
    stop = stop_signal()
    try:
        ctx = await build_context(config)
    except StoreUnavailable as exc:
        raise ConfigError("DATABASE_URL", str(exc)) from None
    leadership = ctx.leadership
    assert leadership is not None  # build_context always elects
    async with contextlib.AsyncExitStack() as started:
        started.push_async_callback(ctx.store.db.close)
        signers = ctx.issuer.signers
        if signers is not None:
            await signers.start()  # they exit by themselves when this process does (their sockets close)
            started.push_async_callback(signers.close)
        await ctx.keys.watch()
        started.push_async_callback(ctx.keys.stop)
        await leadership.start()
        started.push_async_callback(leadership.stop)
        await ctx.audit.checkpointer.start()
        started.push_async_callback(ctx.audit.checkpointer.stop)
        housekeeping = asyncio.create_task(_housekeeping(ctx), name="housekeeping")
        started.callback(housekeeping.cancel)
        runner = web.AppRunner(build_app(ctx), access_log=None)
        await runner.setup()
        started.push_async_callback(runner.cleanup)
        await listen(runner, config.addr, "CORESDK_CP_ADDR")
        settle_after_start_up()
        log.info(
            "control plane listening addr=%s issuer=%s kid=%s store=%s env=%s leader=%s",
            config.addr,
            config.issuer,
            ctx.keys.active.kid,
            ctx.store.db.dialect,
            config.env,
            leadership.leading,
        )
        await stop.wait()
    log.info("control plane stopped")


def main(environ: Mapping[str, str] | None = None) -> int:
    return run_service("controlplane", load_controlplane_config, serve, environ)
