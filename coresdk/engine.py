"""The engine: token validation, authorization and the audit journal, built from one configuration.

Two faces use it — the sidecar (gRPC, for backends) and the gateway (HTTP, in front of them) — so both trust the
same issuers, decide with the same rules and record to an fsynced, hash-chained journal shipped to the control plane
with the face's own credential. Fail closed: until every issuer's keys, the revocation feed and the journal are
ready, `readiness()` says so, and every decision that needs one of them is refused (Unavailable), never guessed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from coresdk.audit.journal import Journal, JournalInUse
from coresdk.audit.log import AuditLog
from coresdk.audit.record import SealedRecord, validate_fields
from coresdk.audit.shipper import Shipper, load_position
from coresdk.auth.cache import VerifiedCache
from coresdk.auth.jwks import JwksSource
from coresdk.auth.revocations import RevocationFeed
from coresdk.auth.validator import TokenValidator, TrustedIssuer
from coresdk.auth.workers import VerifierPool
from coresdk.config.engine import EngineConfig
from coresdk.errors import ConfigError
from coresdk.masking.engine import Masker
from coresdk.masking.fields import mask_fields
from coresdk.metrics import EngineMetrics
from coresdk.policy.authorizer import Authorizer
from coresdk.policy.rego import load_evaluator

log = logging.getLogger("coresdk.engine")


class Engine:
    def __init__(self, config: EngineConfig, metrics: EngineMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or EngineMetrics()
        self.sources = [JwksSource(issuer, config.jwks, self.metrics) for issuer in config.issuers]
        self.revocations = RevocationFeed(config.revocations) if config.revocations else None
        self.workers = VerifierPool(config.auth_workers) if config.auth_workers > 0 else None
        self.validator = TokenValidator(
            {s.issuer.issuer: TrustedIssuer(s.issuer, s) for s in self.sources},
            config.tokens,
            VerifiedCache(config.auth_cache_size),
            self.metrics,
            revocations=self.revocations,
            workers=self.workers,
        )
        self.audit = AuditLog(Journal(config.audit.directory, config.audit.segment_bytes))
        self.chain = config.audit.default_chain
        self.masker = Masker(config.masking_hmac_key)
        self.rego = load_evaluator(config.policy)
        self.authorizer = Authorizer(
            self.validator,
            config.admin_tenant_bypass,
            rego=self.rego,
            audit=self.audit,
            audit_chain=self.chain,
            audit_decisions=config.audit_decisions,
        )
        self.shipper: Shipper | None = None
        self._position_file = config.audit.directory / "shipped.json"

    def readiness(self) -> dict[str, bool]:
        ready = {s.issuer.issuer: s.ready() for s in self.sources}
        if self.revocations is not None:
            ready["revocations"] = self.revocations.ready()
        ready["audit"] = self.audit.ready()  # a face that cannot record what it does is not ready
        return ready

    async def start(self) -> None:
        position = await asyncio.to_thread(load_position, self._position_file) if self._position_file.exists() else {}
        try:
            await self.audit.start(position)
        except JournalInUse as exc:  # a deployment error (two processes on one directory), not an outage
            raise ConfigError(self.config.audit.directory_variable, str(exc)) from None
        revocations = self.config.revocations
        if revocations is not None and self.audit.ready():
            cp_base = revocations.url.rsplit("/api/v1/", 1)[0]
            self.shipper = Shipper(
                self.audit, f"{cp_base}/api/v1/audit/ingest", revocations.token, self._position_file, position
            )
            await self.shipper.start()
        await asyncio.gather(*(s.start() for s in self.sources))
        if self.revocations is not None:
            await self.revocations.start()
        if self.workers is not None:
            await self.workers.start()

    async def stop(self) -> None:
        if self.workers is not None:
            self.workers.stop()
        for source in self.sources:
            await source.stop()
        if self.revocations is not None:
            await self.revocations.stop()
        if self.shipper is not None:
            await self.shipper.stop()
        if self.rego is not None:
            await self.rego.close()
        self.audit.close()

    def audit_body(self, fields: dict[str, Any], metadata_masked: bool = False) -> dict[str, Any]:
        """A record body as the journal takes it: validated, metadata masked (field names, then the detectors) before
        anything is hashed, so no PII enters the chain. metadata_masked: the caller masked every field of its
        metadata that can hold PII itself (the gateway: only the target and the client id can) — no second walk."""
        if metadata_masked:
            return validate_fields(fields)
        metadata, _ = mask_fields(fields.get("metadata") or {})
        body = validate_fields({**fields, "metadata": metadata})
        body["metadata"], _ = self.masker.mask_json(body["metadata"])
        return body

    async def record(self, bodies: list[dict[str, Any]], chain_id: str | None = None) -> list[SealedRecord]:
        """Append to this face's chain; returns once durable (fsync), raises Unavailable otherwise."""
        chain = chain_id or self.chain
        return await self.audit.append([(chain, body) for body in bodies])
