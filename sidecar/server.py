"""Sidecar process wiring: configuration → the engine (coresdk.engine) → gRPC server + loopback health/metrics.

Start-up order keeps the fail-closed promise: the gRPC port opens at once (so callers get UNAVAILABLE rather than
connection errors), health reports NOT_SERVING and /readyz 503 until every issuer's keys are loaded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection

from coresdk.config.sidecar import SidecarConfig, TLSConfig, load_sidecar_config
from coresdk.engine import Engine
from coresdk.errors import ConfigError
from coresdk.runtime import listen, run_service, settle_after_start_up, stop_signal
from coresdk.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    masking_pb2,
    masking_pb2_grpc,
    policy_pb2,
    policy_pb2_grpc,
    secrets_pb2,
    secrets_pb2_grpc,
)
from sidecar.health import health_app
from sidecar.secrets.audit import SecretsTrail
from sidecar.secrets.encryption import Encryptor
from sidecar.secrets.resolver import SecretResolver
from sidecar.secrets.vault import VaultSession
from sidecar.services.audit import AuditService
from sidecar.services.auth import AuthService
from sidecar.services.masking import MaskingService
from sidecar.services.policy import PolicyService
from sidecar.services.secrets import SecretsService
from sidecar.wire import add_service

log = logging.getLogger("coresdk.sidecar")

SERVICE_NAMES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (auth_pb2, "AuthService"),
        (policy_pb2, "PolicyService"),
        (secrets_pb2, "SecretsService"),
        (masking_pb2, "MaskingService"),
        (audit_pb2, "AuditService"),
    )
)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def _server_credentials(tls: TLSConfig) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=tls.ca_file.read_bytes(),
        require_client_auth=True,
    )


class Sidecar:
    """The gRPC face of the engine (coresdk.engine), plus what only the sidecar serves: secrets and masking."""

    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.engine = Engine(config.engine)
        self.metrics = self.engine.metrics
        self.validator = self.engine.validator
        self.audit = self.engine.audit
        self.masker = self.engine.masker
        self.health = health_aio.HealthServicer()
        self.vault = VaultSession(config.vault, self.metrics) if config.vault else None
        self.resolver = SecretResolver(self.vault, config.vault) if self.vault and config.vault else None
        self.encryptor = (
            Encryptor(self.vault, self.resolver, config.vault)
            if self.vault and self.resolver and config.vault
            else None
        )
        self._server: grpc.aio.Server | None = None
        self._health_runner: web.AppRunner | None = None
        self._watch: asyncio.Task[None] | None = None
        self._engine_started = False
        self._vault_started = False

    def readiness(self) -> dict[str, bool]:
        return self.engine.readiness()

    async def start(self) -> None:
        """Listen, then start the engine. A start that fails part-way (an address taken) stops what had started, so
        the process exits with the configuration error instead of lingering with a half-built gRPC server."""
        try:
            await self._start()
        except BaseException:
            await self.stop(grace=0)
            raise

    async def _start(self) -> None:
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        chain = self.config.audit.default_chain if self.config.audit else "sidecar"
        add_service(auth_pb2_grpc.add_AuthServiceServicer_to_server, AuthService(self.validator, self.metrics), server)
        add_service(
            audit_pb2_grpc.add_AuditServiceServicer_to_server,
            AuditService(
                self.audit,
                self.config.audit.default_chain if self.config.audit else "sidecar",
                self.metrics,
                self.masker,
            ),
            server,
        )
        add_service(
            secrets_pb2_grpc.add_SecretsServiceServicer_to_server,
            SecretsService(self.resolver, self.encryptor, self.metrics, SecretsTrail(self.audit, chain, self.masker)),
            server,
        )
        add_service(
            masking_pb2_grpc.add_MaskingServiceServicer_to_server,
            MaskingService(self.masker, self.metrics, self.encryptor),
            server,
        )
        add_service(
            policy_pb2_grpc.add_PolicyServiceServicer_to_server,
            PolicyService(self.engine.authorizer, self.metrics),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            server,
        )
        addr = self.config.sidecar_addr
        try:
            if self.config.tls is not None:
                port = server.add_secure_port(addr, _server_credentials(self.config.tls))
            else:
                port = server.add_insecure_port(addr)
        except RuntimeError as exc:
            raise ConfigError("CORESDK_SIDECAR_ADDR", f"cannot listen on {addr}: {exc}") from None
        if port == 0:
            raise ConfigError("CORESDK_SIDECAR_ADDR", f"cannot listen on {addr}")
        await self._set_serving(False)
        await server.start()
        self._server = server
        log.info("grpc listening addr=%s mtls=%s env=%s", addr, self.config.tls is not None, self.config.env)

        runner = web.AppRunner(health_app(self.metrics, self.readiness), access_log=None)
        await runner.setup()
        await listen(runner, self.config.health_addr, "CORESDK_HEALTH_ADDR")
        self._health_runner = runner
        log.info("health listening addr=%s", self.config.health_addr)

        self._engine_started = True
        await self.engine.start()
        if self.vault is not None:
            self._vault_started = True
            await self.vault.start()
        self._watch = asyncio.create_task(self._watch_readiness())

    async def _set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set("", status)
        for name in SERVICE_NAMES:
            await self.health.set(name, status)

    async def _watch_readiness(self) -> None:
        last: bool | None = None
        while True:
            ready = all(self.readiness().values())
            if ready != last:
                await self._set_serving(ready)
                log.info("readiness changed ready=%s", ready)
                last = ready
            await asyncio.sleep(0.5)

    async def stop(self, grace: float = 5.0) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.health.enter_graceful_shutdown()
        if self._server is not None:
            await self._server.stop(grace)
        if self._health_runner is not None:
            await self._health_runner.cleanup()
        if self.vault is not None and self._vault_started:
            await self.vault.stop()
        if self._engine_started:
            await self.engine.stop()


async def serve(config: SidecarConfig) -> None:
    sidecar = Sidecar(config)
    stop = stop_signal()
    await sidecar.start()
    settle_after_start_up()
    await stop.wait()
    log.info("shutting down")
    await sidecar.stop()
    log.info("stopped")


def main(environ: Mapping[str, str] | None = None) -> int:
    return run_service("sidecar", load_sidecar_config, serve, environ)
