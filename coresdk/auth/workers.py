"""Token verification in worker processes, so that a large batch uses every core.

Python runs one thread of bytecode at a time, so one process verifies about 20 k tokens per second whatever the
machine. `CORESDK_AUTH_WORKERS` = N > 0 starts N worker processes (spawned, never forked: grpcio does not survive a
fork) that run coresdk.auth.verdict.judge on chunks of a batch's cache misses, against the issuers' current keys
and the caller's clock, both sent with every chunk. A worker answers with the Principal already serialised.

What a worker cannot decide is handed back to be judged in the calling process: a token of an issuer whose keys are
not current there (the outage's own refusal is given here), an unknown kid (refetching keys is the caller's job),
and every token of a chunk whose worker failed. So a worker can make a batch faster, never laxer.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from coresdk.auth.cache import CachedPrincipal
from coresdk.auth.principal_wire import principal_wire
from coresdk.auth.verdict import UnknownKid, judge
from coresdk.children import interrupts_ignored
from coresdk.config.engine import IssuerConfig, TokenPolicy
from coresdk.errors import CoreSDKError, InvalidArgument, Unauthenticated, Unavailable
from coresdk.jose.jwk import KeySet, VerificationKey

log = logging.getLogger("coresdk.auth.workers")

# A worker's answer for one token: the verified answer, a refusal, or None ("judge it in the calling process").
Outcome = CachedPrincipal | CoreSDKError | None
_CHUNK_MIN = 32
_ERRORS: dict[str, type[CoreSDKError]] = {
    cls.code.value: cls for cls in (InvalidArgument, Unauthenticated, Unavailable, CoreSDKError)
}


class WorkerUnavailable(Exception):
    """The pool cannot judge now (not started, stopped, or a worker died); the caller judges in process."""


@dataclass(frozen=True)
class PortableKey:
    """A verification key as it crosses to a worker: public key material (DER SubjectPublicKeyInfo) and its names."""

    kid: str | None
    kty: str
    alg: str | None
    der: bytes
    thumbprint: str


def portable(keyset: KeySet) -> tuple[PortableKey, ...]:
    return tuple(
        PortableKey(
            k.kid,
            k.kty,
            k.alg,
            k.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
            k.thumbprint,
        )
        for k in keyset.keys
    )


# --- in the worker process -------------------------------------------------------------------------------------------

_restored: dict[tuple[PortableKey, ...], KeySet] = {}


def _keyset(keys: tuple[PortableKey, ...]) -> KeySet:
    found = _restored.get(keys)
    if found is None:
        found = KeySet(
            tuple(
                VerificationKey(k.kid, k.kty, k.alg, load_der_public_key(k.der), k.thumbprint)  # type: ignore[arg-type]
                for k in keys
            )
        )
        if len(_restored) >= 64:
            _restored.clear()
        _restored[keys] = found
    return found


# (wire, issuer, thumbprint, exp, jti) | (code, reason, message) | None
WorkerAnswer = tuple[bytes, str, str, float, str] | tuple[str, str, str] | None


def judge_chunk(
    policy: TokenPolicy,
    configs: Mapping[str, IssuerConfig],
    keys: Mapping[str, tuple[PortableKey, ...]],
    items: Sequence[tuple[str, str]],
    now: float,
) -> list[WorkerAnswer]:
    """Runs in a worker: every (token, audience) judged exactly as TokenValidator.verify would on a cache miss."""

    def keys_of(issuer: str) -> KeySet:
        found = keys.get(issuer)
        if found is None:
            raise _JudgeHere()
        return _keyset(found)

    out: list[WorkerAnswer] = []
    for token, audience in items:
        try:
            verdict = judge(token, audience, policy, configs.get, keys_of, now)
            wire, token_id = principal_wire(verdict.claims)
        except (_JudgeHere, UnknownKid):
            out.append(None)
            continue
        except CoreSDKError as err:
            out.append((err.code.value, err.reason, err.message))
            continue
        out.append((wire, verdict.issuer.issuer, verdict.key.thumbprint, verdict.exp, token_id))
    return out


class _JudgeHere(Exception):
    pass


def _ready() -> float:
    return time.time()


# --- in the calling process ------------------------------------------------------------------------------------------


def _outcome(answer: WorkerAnswer) -> Outcome:
    if answer is None:
        return None
    if len(answer) == 3:
        code, reason, message = answer
        return _ERRORS.get(code, CoreSDKError)(reason, message)
    wire, issuer, thumbprint, exp, jti = answer
    return CachedPrincipal(issuer, thumbprint, exp, wire, jti)


_PARENT_POLL_SECONDS = 0.5


def _worker_start(parent: int) -> None:
    """In each worker, first: a terminal's ^C is the serving process's to answer (it stops the pool), and a worker
    whose serving process is gone (SIGKILL, a crash: no shutdown ran) exits by itself instead of waiting forever on
    a call queue whose other end it holds too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start, initargs=(os.getpid(),)
    )


class VerifierPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._exports: dict[str, tuple[KeySet, tuple[PortableKey, ...]]] = {}

    async def start(self) -> None:
        self._pool = _new_pool(self.workers)
        await self._spawn_all()
        log.info("verification workers started workers=%d", self.workers)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _portable(self, issuer: str, keyset: KeySet) -> tuple[PortableKey, ...]:
        cached = self._exports.get(issuer)
        if cached is None or cached[0] is not keyset:
            cached = (keyset, portable(keyset))
            self._exports[issuer] = cached
        return cached[1]

    async def judge(
        self,
        policy: TokenPolicy,
        configs: Mapping[str, IssuerConfig],
        keys: Mapping[str, KeySet],
        items: Sequence[tuple[str, str]],
        now: float,
    ) -> list[Outcome]:
        """Outcomes in the order of items; raises WorkerUnavailable when the pool cannot answer at all."""
        pool = self._pool
        if pool is None:
            raise WorkerUnavailable("not started")
        shipped = {issuer: self._portable(issuer, ks) for issuer, ks in keys.items()}
        size = max(_CHUNK_MIN, -(-len(items) // (2 * self.workers)))
        loop = asyncio.get_running_loop()
        try:
            with interrupts_ignored():  # a pool restarted after a failure spawns its workers in these submits
                pending = [
                    loop.run_in_executor(pool, judge_chunk, policy, configs, shipped, items[i : i + size], now)
                    for i in range(0, len(items), size)
                ]
            chunks = await asyncio.gather(*pending)
        except BrokenProcessPool as exc:  # a dead worker breaks the whole pool: start a new one for the next batch
            self._restart(exc)
            raise WorkerUnavailable(f"a worker died: {exc}") from None
        except Exception as exc:  # anything else a worker raised: the calling process judges, and says why
            raise WorkerUnavailable(f"{type(exc).__name__}: {exc}") from None
        return [_outcome(answer) for chunk in chunks for answer in chunk]

    async def _spawn_all(self) -> None:
        """Spawn every worker now (each imports the verifier), not on the first batch, with ^C ignored until each
        has said it ignores ^C itself (the pool spawns its processes inside submit)."""
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        with interrupts_ignored():
            ready = [loop.run_in_executor(self._pool, _ready) for _ in range(self.workers)]
        await asyncio.gather(*ready)

    def _restart(self, cause: BaseException) -> None:
        log.error("verification worker failed (%s); restarting the pool", type(cause).__name__)
        old, self._pool = self._pool, _new_pool(self.workers)
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
