"""AuthenticateBatch and AuthenticateStream with their cache misses judged in worker processes
(CORESDK_AUTH_WORKERS): every token gets exactly the answer it gets on a sidecar without workers; a key published after start-up is found
(the unknown kid is refetched by the serving process); a killed worker costs no answer and the pool comes back."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.grpc_client import error_reason
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess, trusting
from tests.support.tokens import AUDIENCE, SigningKey, claims, compact, hand_signed

Stub = auth_pb2_grpc.AuthServiceStub


@pytest.fixture(scope="module")
def worker_keys() -> dict[str, SigningKey]:
    return {"rs": SigningKey.rsa("w-rs", "RS256"), "ec": SigningKey.ec("w-ec"), "late": SigningKey.rsa("w-late")}


@pytest.fixture(scope="module")
def worker_jwks(worker_keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [worker_keys["rs"].jwk(), worker_keys["ec"].jwk()]
    yield server
    server.close()


def _start(jwks: JwksServer, **extra: str) -> SidecarProcess:
    # Cache off: every batch item is a miss, so every one goes through the workers when they are on.
    return SidecarProcess(trusting(jwks.url, CORESDK_AUTH_CACHE_SIZE="0", **extra))


@pytest.fixture(scope="module")
def with_workers(worker_jwks: JwksServer) -> Iterator[SidecarProcess]:
    proc = _start(worker_jwks, CORESDK_AUTH_WORKERS="2")
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="module")
def without_workers(worker_jwks: JwksServer) -> Iterator[SidecarProcess]:
    proc = _start(worker_jwks)
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stubs(with_workers: SidecarProcess, without_workers: SidecarProcess) -> AsyncIterator[tuple[Stub, Stub]]:
    async with (
        grpc.aio.insecure_channel(with_workers.target) as a,
        grpc.aio.insecure_channel(without_workers.target) as b,
    ):
        yield auth_pb2_grpc.AuthServiceStub(a), auth_pb2_grpc.AuthServiceStub(b)


def _answer(result: Any) -> tuple[str, Any]:
    if result.WhichOneof("result") == "principal":
        return ("principal", result.principal.SerializeToString(deterministic=True))
    return ("error", (result.error.code, result.error.reason))


def _variants(keys: dict[str, SigningKey], rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(token, audience) pairs drawn from every way a token can be right or wrong."""
    now = int(time.time())

    def one(i: int) -> tuple[str, str]:
        key = keys[rng.choice(["rs", "ec"])]
        body = claims(jti=f"v{i}", extra={"n": rng.randint(0, 9), "tags": ["a", rng.random()]})
        audience = ""
        kind = rng.choice(
            [
                "ok", "ok", "ok", "expired", "future_iat", "not_yet", "too_long", "no_sub", "wrong_iss", "wrong_aud",
                "asked_aud", "bad_sig", "alg_none", "unknown_kid", "dup_key", "garbage", "jku", "numbers", "no_exp",
                "huge_number", "surrogate", "deep",
            ]
        )  # fmt: skip
        if kind == "expired":
            body.update(iat=now - 1000, exp=now - 500)
        elif kind == "future_iat":
            body.update(iat=now + 900, exp=now + 1000)
        elif kind == "not_yet":
            body["nbf"] = now + 900
        elif kind == "too_long":
            body["exp"] = now + 10 * 86400
        elif kind == "no_sub":
            del body["sub"]
        elif kind == "wrong_iss":
            body["iss"] = "https://evil.test"
        elif kind == "wrong_aud":
            body["aud"] = "api://other"
        elif kind == "asked_aud":
            audience = rng.choice([AUDIENCE, "api://not-allowed"])
        elif kind == "numbers":
            body["exp"] = float(body["exp"]) + 0.5
        elif kind == "no_exp":
            del body["exp"]
        elif kind == "huge_number":
            body["x"] = 10**400
        elif kind == "surrogate":
            body["x"] = "\ud800"
        elif kind == "deep":
            deep: Any = 1
            for _ in range(40):
                deep = [deep]
            body["x"] = deep
        if kind == "bad_sig":
            token = key.sign(body)
            return token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"), audience
        if kind == "alg_none":
            return compact({"alg": "none"}, body, b""), audience
        if kind == "unknown_kid":
            return key.sign(body, headers={"kid": "nobody"}), audience
        if kind == "dup_key":
            return hand_signed(key, {"alg": key.alg, "kid": key.kid}, b'{"sub":"a","sub":"b"}'), audience
        if kind == "garbage":
            return rng.choice(["", "a.b", "a.b.c", "x" * 50, "..", "eyJ.eyJ.eyJ"]), audience
        if kind == "jku":
            return key.sign(body, headers={"jku": "https://evil.test/jwks"}), audience
        return key.sign(body), audience

    return [one(i) for i in range(n)]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_key_published_after_start_is_found(
    stubs: tuple[Stub, Stub], worker_jwks: JwksServer, worker_keys: dict[str, SigningKey]
) -> None:
    workers, _ = stubs
    late = worker_keys["late"]
    tokens = [late.sign(claims(jti=f"late{i}")) for i in range(40)]
    worker_jwks.keys = [*worker_jwks.keys, late.jwk()]
    deadline = time.monotonic() + 10
    while True:  # refetching for an unknown kid is rate-limited; this is the module's first, so it refetches at once
        results = (await workers.AuthenticateBatch(_batch(tokens))).results
        if all(r.WhichOneof("result") == "principal" for r in results) or time.monotonic() > deadline:
            break
        assert {r.error.reason for r in results if r.WhichOneof("result") == "error"} == {"UNKNOWN_KID"}
        await asyncio.sleep(0.5)
    assert [r.principal.token_id for r in results] == [f"late{i}" for i in range(40)]


@pytest.mark.asyncio(loop_scope="module")
async def test_every_token_gets_the_answer_authenticate_gives_it(
    stubs: tuple[Stub, Stub], worker_keys: dict[str, SigningKey]
) -> None:
    workers, plain = stubs
    for seed in range(3):
        items = _variants(worker_keys, random.Random(seed), 120)
        request = auth_pb2.AuthenticateBatchRequest(
            requests=[
                auth_pb2.AuthenticateRequest(token=t, audience=a, request_id=str(i)) for i, (t, a) in enumerate(items)
            ]
        )
        batched = (await workers.AuthenticateBatch(request)).results
        reference = (await plain.AuthenticateBatch(request)).results
        assert [r.request_id for r in batched] == [str(i) for i in range(len(items))]
        assert [_answer(r) for r in batched] == [_answer(r) for r in reference]

        async def stream(stub: Stub, sent: auth_pb2.AuthenticateBatchRequest) -> list[tuple[str, Any]]:
            async def requests():  # type: ignore[no-untyped-def]
                for r in sent.requests:
                    yield r

            return [_answer(r) async for r in stub.AuthenticateStream(requests())]

        assert await stream(workers, request) == [_answer(r) for r in reference] == await stream(plain, request)
        kinds = {_answer(r)[0] for r in batched}
        assert kinds == {"principal", "error"}  # the draw holds both, so the comparison means something


def _workers_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                children.append(int(entry.name))
    return children


def _batch(tokens: list[str]) -> auth_pb2.AuthenticateBatchRequest:
    return auth_pb2.AuthenticateBatchRequest(requests=[auth_pb2.AuthenticateRequest(token=t) for t in tokens])


@pytest.mark.asyncio(loop_scope="module")
async def test_a_killed_worker_loses_no_answer_and_the_pool_comes_back(
    stubs: tuple[Stub, Stub], with_workers: SidecarProcess, worker_keys: dict[str, SigningKey]
) -> None:
    workers, _ = stubs
    tokens = [worker_keys["rs"].sign(claims(jti=f"k{i}")) for i in range(64)]
    before = _workers_of(with_workers.proc.pid)
    assert len(before) == 2, before
    os.kill(before[0], signal.SIGKILL)
    await asyncio.sleep(0.2)
    for _ in range(3):  # the first batch after the kill is judged in process; later ones by the new pool
        results = (await workers.AuthenticateBatch(_batch(tokens))).results
        assert [r.principal.token_id for r in results] == [f"k{i}" for i in range(64)]
    assert "restarting the pool" in with_workers.output()
    assert len(_workers_of(with_workers.proc.pid)) == 2


@pytest.mark.asyncio(loop_scope="module")
async def test_claims_no_principal_can_carry_get_a_precise_refusal(
    stubs: tuple[Stub, Stub], worker_keys: dict[str, SigningKey]
) -> None:
    """Signed by a trusted key, yet unanswerable as a Principal: refused by reason, never an unexplained failure."""
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    cases = {"INVALID_CLAIM": [10**400, deep], "MALFORMED": ["\ud800"]}
    for stub in stubs:
        for reason, values in cases.items():
            for value in values:
                token = worker_keys["rs"].sign(claims(extra={"x": value}))
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert error_reason(refused.value) == reason
