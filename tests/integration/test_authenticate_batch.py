"""AuthenticateBatch over real gRPC: results in request order, each token judged exactly as Authenticate judges it,
answers from the cache identical to fresh ones, and a batch outside its bounds refused as a whole."""

from __future__ import annotations

import grpc
import pytest

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.grpc_client import error_reason
from tests.support.tokens import SigningKey, claims

Stub = auth_pb2_grpc.AuthServiceStub


def batch(*tokens: str, ids: bool = True) -> auth_pb2.AuthenticateBatchRequest:
    return auth_pb2.AuthenticateBatchRequest(
        requests=[
            auth_pb2.AuthenticateRequest(token=t, request_id=f"r{i}" if ids else "") for i, t in enumerate(tokens)
        ]
    )


async def test_results_follow_the_request_order(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    tokens = [keys[("rs", "ps", "ec")[i % 3]].sign(claims(jti=f"b{i}")) for i in range(30)]
    tokens[7] = "garbage"
    tokens[13] = keys["rs"].sign(claims(aud="api://other"))
    reply = await auth_stub.AuthenticateBatch(batch(*tokens))
    assert [r.request_id for r in reply.results] == [f"r{i}" for i in range(30)]
    for i, result in enumerate(reply.results):
        if i == 7:
            assert (result.error.code, result.error.reason) == ("UNAUTHENTICATED", "MALFORMED")
        elif i == 13:
            assert result.error.reason == "AUDIENCE_MISMATCH"
        else:
            assert result.WhichOneof("result") == "principal"
            assert result.principal.token_id == f"b{i}"


async def test_every_path_gives_the_same_principal(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    """Fresh, cached, unary, streamed and batched answers are one Principal, claims included."""
    token = keys["rs"].sign(claims(jti="same", extra={"nested": [1, "two", None, True, {"x": 1.5}]}))
    fresh = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    cached = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    batched = (await auth_stub.AuthenticateBatch(batch(token, token, ids=False))).results

    async def one():  # type: ignore[no-untyped-def]
        yield auth_pb2.AuthenticateRequest(token=token, request_id="s")

    streamed = [r async for r in auth_stub.AuthenticateStream(one())]
    assert fresh.claims["extra"]["nested"][4]["x"] == 1.5
    assert fresh.token_id == "same"
    for other in (cached, batched[0].principal, batched[1].principal, streamed[0].principal):
        assert other == fresh
    assert [b.request_id for b in batched] == ["", ""] and streamed[0].request_id == "s"


@pytest.mark.parametrize("size", [0, 1001])
async def test_a_batch_outside_its_bounds_is_refused(auth_stub: Stub, keys: dict[str, SigningKey], size: int) -> None:
    token = keys["rs"].sign(claims(jti="bounds"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await auth_stub.AuthenticateBatch(batch(*([token] * size)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(info.value) == "INVALID_BATCH_SIZE"


async def test_the_largest_batch_is_answered(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    token = keys["ec"].sign(claims(jti="largest"))
    reply = await auth_stub.AuthenticateBatch(batch(*([token] * 1000)))
    assert len(reply.results) == 1000 and all(r.principal.token_id == "largest" for r in reply.results)


async def test_stream_reads_ahead_but_answers_in_order(auth_stub: Stub, keys: dict[str, SigningKey]) -> None:
    """More requests than the read-ahead queue holds, answered one by one in the order sent."""
    tokens = [keys["ec"].sign(claims(jti=f"o{i}")) for i in range(150)]

    async def gen():  # type: ignore[no-untyped-def]
        for i, t in enumerate(tokens):
            yield auth_pb2.AuthenticateRequest(token=t if i % 10 else "garbage", request_id=str(i))

    results = [r async for r in auth_stub.AuthenticateStream(gen())]
    assert [r.request_id for r in results] == [str(i) for i in range(150)]
    assert all((r.error.reason == "MALFORMED") == (i % 10 == 0) for i, r in enumerate(results))


async def test_a_stream_abandoned_midway_leaves_the_service_working(
    auth_stub: Stub, keys: dict[str, SigningKey]
) -> None:
    token = keys["rs"].sign(claims(jti="abandoned"))

    async def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            yield auth_pb2.AuthenticateRequest(token=token, request_id=str(i))
            i += 1

    call = auth_stub.AuthenticateStream(endless())
    seen = 0
    async for _ in call:
        seen += 1
        if seen == 5:
            call.cancel()
            break
    p = await auth_stub.Authenticate(auth_pb2.AuthenticateRequest(token=token))
    assert p.token_id == "abandoned"
