"""Strict, canonical base64url (RFC 7515 §2): no padding, no foreign characters, no non-zero trailing bits.

Lenient decoders accept many spellings of one value, which lets an attacker produce distinct tokens with equal
meaning (cache poisoning, signature malleability). Here each value has exactly one accepted encoding.
"""

from __future__ import annotations

import base64
import binascii
import re

_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


class Base64Error(ValueError):
    pass


def b64url_decode(data: str | bytes) -> bytes:
    raw = data.encode("ascii", "strict") if isinstance(data, str) else data
    if not _B64URL.fullmatch(raw):
        raise Base64Error("invalid base64url alphabet or padding")
    rem = len(raw) % 4
    if rem == 1:
        raise Base64Error("invalid base64url length")
    try:
        decoded = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Base64Error("invalid base64url") from exc
    # Canonical form: re-encoding must give back the input (rejects non-zero trailing bits).
    if b64url_encode(decoded).encode("ascii") != raw:
        raise Base64Error("non-canonical base64url")
    return decoded


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
