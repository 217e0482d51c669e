"""The ciphertext format and the helper that encrypts fields of application documents before they are stored.

    cse:v1:transit:<key name>:<vault ciphertext, e.g. vault:v3:...>
    cse:v1:aesgcm:<data key version>:<base64url(nonce ‖ ciphertext ‖ tag)>

Associated data binds a ciphertext to its record and field ("<collection>/<record id>/<field>"), so a value moved
to another row or field no longer decrypts. Base64 is not encryption: nothing here is reversible without the key.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coresdk import reasons
from coresdk.errors import InvalidArgument

PREFIX = "cse:v1:"


@dataclass(frozen=True)
class Envelope:
    mode: str  # transit | aesgcm
    key: str  # transit key name, or the data key version
    payload: str


def encode(envelope: Envelope) -> str:
    return f"{PREFIX}{envelope.mode}:{envelope.key}:{envelope.payload}"


def decode(text: str) -> Envelope:
    if not text.startswith(PREFIX):
        raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "not a CoreSDK ciphertext")
    mode, sep, rest = text[len(PREFIX) :].partition(":")
    key, sep2, payload = rest.partition(":")
    if not sep or not sep2 or mode not in ("transit", "aesgcm") or not key or not payload:
        raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "malformed CoreSDK ciphertext")
    return Envelope(mode, key, payload)


def aesgcm_seal(key: bytes, key_version: str, plaintext: bytes, associated: bytes) -> str:
    nonce = os.urandom(12)
    header = f"{PREFIX}aesgcm:{key_version}:".encode()
    sealed = AESGCM(key).encrypt(nonce, plaintext, header + associated)
    return encode(Envelope("aesgcm", key_version, base64.urlsafe_b64encode(nonce + sealed).decode()))


def aesgcm_open(key: bytes, envelope: Envelope, associated: bytes) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(envelope.payload.encode())
        header = f"{PREFIX}aesgcm:{envelope.key}:".encode()
        return AESGCM(key).decrypt(raw[:12], raw[12:], header + associated)
    except (InvalidTag, ValueError):
        raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "ciphertext failed authentication") from None


Encrypt = Callable[[bytes, bytes], Awaitable[str]]
Decrypt = Callable[[str, bytes], Awaitable[bytes]]


def field_context(collection: str, record_id: str, field: str) -> bytes:
    return f"{collection}/{record_id}/{field}".encode()


async def encrypt_fields(
    document: Mapping[str, Any], fields: tuple[str, ...], collection: str, record_id: str, encrypt: Encrypt
) -> dict[str, Any]:
    """A copy of document whose named string fields are ciphertext bound to (collection, record_id, field)."""
    out = dict(document)
    for name in fields:
        value = out.get(name)
        if isinstance(value, str) and not value.startswith(PREFIX):
            out[name] = await encrypt(value.encode(), field_context(collection, record_id, name))
    return out


async def decrypt_fields(
    document: Mapping[str, Any], fields: tuple[str, ...], collection: str, record_id: str, decrypt: Decrypt
) -> dict[str, Any]:
    out = dict(document)
    for name in fields:
        value = out.get(name)
        if isinstance(value, str) and value.startswith(PREFIX):
            out[name] = (await decrypt(value, field_context(collection, record_id, name))).decode()
    return out
