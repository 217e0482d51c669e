"""encrypt_fields leaves nothing it was asked to encrypt in the clear, whatever the JSON type (issue 11, #11).

Real AES-256-GCM (the sidecar's aesgcm mode) stands in for the sidecar: the helper under test is the same code the
application runs; the sidecar over gRPC and OpenBao transit are exercised in tests/integration/test_secrets_audit.py.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk import reasons
from coresdk.encryption.envelope import (
    FIELD_NOT_JSON,
    PREFIX,
    aesgcm_open,
    aesgcm_seal,
    decode,
    decrypt_fields,
    encrypt_fields,
    field_context,
)
from coresdk.errors import InvalidArgument

KEY = os.urandom(32)


async def encrypt(plaintext: bytes, associated: bytes) -> str:
    return aesgcm_seal(KEY, "1", plaintext, associated)


async def decrypt(ciphertext: str, associated: bytes) -> bytes:
    return aesgcm_open(KEY, decode(ciphertext), associated)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@settings(max_examples=200, deadline=None)
@given(secret=JSON, headers=JSON, plain=JSON)
def test_every_json_value_is_encrypted_and_round_trips_exactly(secret: Any, headers: Any, plain: Any) -> None:
    doc = {"id": "42", "secret": secret, "headers": headers, "url": plain}
    sealed = run(encrypt_fields(doc, ("secret", "headers"), "webhooks", "42", encrypt))
    for name in ("secret", "headers"):
        assert isinstance(sealed[name], str) and sealed[name].startswith(PREFIX), sealed[name]
    assert sealed["url"] == plain and sealed["id"] == "42"
    opened = run(decrypt_fields(sealed, ("secret", "headers"), "webhooks", "42", decrypt))
    assert json.dumps(opened, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert opened == doc


def test_a_dict_of_headers_is_ciphertext_bound_to_its_record_and_field() -> None:
    doc = {"headers": {"Authorization": "Bearer sk-live-123", "X-Api-Key": "k"}, "n": 7}
    sealed = run(encrypt_fields(doc, ("headers", "n"), "tools", "9", encrypt))
    assert "sk-live-123" not in json.dumps(sealed)
    assert run(decrypt_fields(sealed, ("headers", "n"), "tools", "9", decrypt)) == doc
    for moved in (("tools", "10"), ("webhooks", "9")):
        with pytest.raises(InvalidArgument) as err:
            run(decrypt_fields(sealed, ("headers",), *moved, decrypt))
        assert err.value.reason == reasons.CIPHERTEXT_INVALID
    swapped = {"headers": sealed["n"], "n": sealed["headers"]}
    with pytest.raises(InvalidArgument):
        run(decrypt_fields(swapped, ("headers",), "tools", "9", decrypt))


def test_a_value_that_looks_encrypted_is_encrypted_too() -> None:
    forged = f"{PREFIX}aesgcm:1:not-really-ciphertext"
    sealed = run(encrypt_fields({"secret": forged}, ("secret",), "c", "1", encrypt))
    assert sealed["secret"] != forged
    assert run(decrypt_fields(sealed, ("secret",), "c", "1", decrypt)) == {"secret": forged}


@pytest.mark.parametrize("value", [b"raw bytes", {1, 2}, float("nan"), float("inf"), object(), {"k": b"v"}])
def test_a_value_json_cannot_carry_is_refused(value: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        run(encrypt_fields({"secret": value}, ("secret",), "c", "1", encrypt))
    assert err.value.reason == FIELD_NOT_JSON


@pytest.mark.parametrize("stored", ["plain text", 42, None, {"a": 1}, "cse:v1:aesgcm:1:AAAA"])
def test_decrypt_refuses_a_field_that_is_not_a_valid_ciphertext(stored: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        run(decrypt_fields({"secret": stored}, ("secret",), "c", "1", decrypt))
    assert err.value.reason == reasons.CIPHERTEXT_INVALID


def test_fields_written_by_the_string_only_helper_still_open() -> None:
    legacy = aesgcm_seal(KEY, "1", b"whsec_123", field_context("webhooks", "42", "secret"))
    assert run(decrypt_fields({"secret": legacy}, ("secret",), "webhooks", "42", decrypt)) == {"secret": "whsec_123"}


def test_absent_fields_stay_absent() -> None:
    assert run(encrypt_fields({"id": 1}, ("secret",), "c", "1", encrypt)) == {"id": 1}
    assert run(decrypt_fields({"id": 1}, ("secret",), "c", "1", decrypt)) == {"id": 1}
