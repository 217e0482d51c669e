"""Signatures made in signer processes (controlplane.keys.signer): the same tokens, every key, a dead signer."""

from __future__ import annotations

import asyncio
import os
import signal

import jwt
import pytest

from controlplane.keys.signer import ProcessSigners, SignerUnavailable
from controlplane.keys.signing import SigningKey

PAYLOAD = b'{"sub":"client","jti":"j1","iat":1,"exp":2}'


@pytest.fixture
async def signers() -> ProcessSigners:
    pool = ProcessSigners(1)
    await pool.start()
    yield pool  # type: ignore[misc]
    await pool.close()


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
async def test_a_signer_makes_the_token_the_key_makes_here(signers: ProcessSigners, alg: str) -> None:
    key = SigningKey.generate(alg)
    token = await signers.sign_jws(key, PAYLOAD)
    public = key.private_key.public_key()
    assert jwt.decode(token, public, algorithms=[alg], options={"verify_exp": False})["jti"] == "j1"
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    if alg == "RS256":  # deterministic: the very bytes sign_jws makes in this process
        assert token == key.sign_jws(PAYLOAD)


async def test_concurrent_signatures_come_back_to_their_own_callers(signers: ProcessSigners) -> None:
    old, new = SigningKey.generate("RS256"), SigningKey.generate("ES256")  # a rotation: both keys in flight
    payloads = [f'{{"jti":"{i}"}}'.encode() for i in range(60)]
    keys = [old if i % 2 else new for i in range(60)]
    tokens = await asyncio.gather(*(signers.sign_jws(k, p) for k, p in zip(keys, payloads, strict=True)))
    for i, (key, token) in enumerate(zip(keys, tokens, strict=True)):
        claims = jwt.decode(token, key.private_key.public_key(), algorithms=[key.alg])
        assert claims == {"jti": str(i)}


async def test_a_dead_signer_fails_what_it_owed_and_is_replaced(signers: ProcessSigners) -> None:
    key = SigningKey.generate("RS256")
    await signers.sign_jws(key, PAYLOAD)
    (signer,) = signers._signers
    owed = await signers.submit(key, PAYLOAD)
    os.kill(signer.proc.pid, signal.SIGKILL)
    with pytest.raises(SignerUnavailable):
        await owed  # unless it was answered before it died
    token = await signers.sign_jws(key, PAYLOAD)  # a new signer, which learns the key again
    assert token == key.sign_jws(PAYLOAD)
    assert signers._signers[0].proc.pid != signer.proc.pid
    assert signer.proc.poll() is not None  # the dead one was reaped


async def test_signers_exit_when_closed() -> None:
    pool = ProcessSigners(2)
    await pool.start()
    procs = [s.proc for s in pool._signers]
    await pool.close()
    assert all(p.poll() is not None for p in procs)
