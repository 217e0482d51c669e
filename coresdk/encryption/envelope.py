"""The ciphertext format and the helper that encrypts fields of application documents before they are stored.

    cse:v1:transit:<key name>:<vault ciphertext, e.g. vault:v3:...>
    cse:v1:aesgcm:<data key version>:<base64url(nonce ‖ ciphertext ‖ tag)>

Associated data binds a ciphertext to its record and field ("<collection>/<record id>/<field>"), so a value moved
to another row or field no longer decrypts. Base64 is not encryption: nothing here is reversible without the key.
"""

from __future__ import annotations

import base64
import json
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


FIELD_NOT_JSON = "FIELD_NOT_JSON"
_JSON_FIELD = b"\x00json"  # appended to a field's context when its plaintext is the JSON text of the value


def field_context(collection: str, record_id: str, field: str) -> bytes:
    return f"{collection}/{record_id}/{field}".encode()


def _json_bytes(name: str, value: Any) -> bytes:
    """The exact JSON text of value; anything JSON cannot carry (bytes, NaN, sets, objects) is refused, not skipped."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(FIELD_NOT_JSON, f"field {name!r} is not a JSON value ({exc})") from None


async def encrypt_fields(
    document: Mapping[str, Any], fields: tuple[str, ...], collection: str, record_id: str, encrypt: Encrypt
) -> dict[str, Any]:
    """A copy of document whose named fields are ciphertext bound to (collection, record_id, field).

    Every value is encrypted, whatever its JSON type — a dict of headers, a list, a number, null — as its JSON text,
    so decrypt_fields gives back exactly what went in. Nothing named is ever left in the clear: a value that looks
    like a ciphertext already is encrypted again too (it may be attacker-chosen text), and a value JSON cannot
    carry raises FIELD_NOT_JSON. Fields absent from the document are left absent.
    """
    out = dict(document)
    for name in fields:
        if name in out:
            context = field_context(collection, record_id, name) + _JSON_FIELD
            out[name] = await encrypt(_json_bytes(name, out[name]), context)
    return out


async def decrypt_fields(
    document: Mapping[str, Any], fields: tuple[str, ...], collection: str, record_id: str, decrypt: Decrypt
) -> dict[str, Any]:
    """The inverse of encrypt_fields. A named field that is not a CoreSDK ciphertext is refused, never passed on.

    Ciphertexts written before values were JSON-encoded (strings only, bound to the bare field context) still
    open: when the JSON binding fails authentication the legacy binding is tried, and its plaintext is the string.
    """
    out = dict(document)
    for name in fields:
        if name not in out:
            continue
        value = out[name]
        if not isinstance(value, str) or not value.startswith(PREFIX):
            raise InvalidArgument(reasons.CIPHERTEXT_INVALID, f"field {name!r} is not encrypted")
        context = field_context(collection, record_id, name)
        try:
            plaintext = await decrypt(value, context + _JSON_FIELD)
        except InvalidArgument as exc:
            if exc.reason != reasons.CIPHERTEXT_INVALID:
                raise
            out[name] = (await decrypt(value, context)).decode()
            continue
        out[name] = json.loads(plaintext)
    return out
