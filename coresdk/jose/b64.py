"""Strict, canonical base64url (RFC 7515 §2): no padding, no foreign characters, no non-zero trailing bits.

Lenient decoders accept many spellings of one value, which lets an attacker produce distinct tokens with equal
meaning (cache poisoning, signature malleability). Here each value has exactly one accepted encoding.
"""

from __future__ import annotations

import base64
import binascii


class Base64Error(ValueError):
    pass


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTET = {c: i for i, c in enumerate(_ALPHABET)}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# Bits of the last character that fall outside the encoded bytes, by input length mod 4: they must be zero.
_UNUSED_BITS = {2: 0x0F, 3: 0x03}


def b64url_decode(data: str | bytes) -> bytes:
    try:
        raw = data.encode("ascii", "strict") if isinstance(data, str) else data
    except UnicodeEncodeError as exc:
        raise Base64Error("invalid base64url alphabet") from exc
    if raw.translate(None, _ALPHABET):  # what is left once every alphabet character is deleted: foreign ones
        raise Base64Error("invalid base64url alphabet or padding")
    rem = len(raw) % 4
    if rem == 1:
        raise Base64Error("invalid base64url length")
    if rem and _SEXTET[raw[-1]] & _UNUSED_BITS[rem]:
        raise Base64Error("non-canonical base64url (non-zero trailing bits)")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STANDARD) + b"=" * (-len(raw) % 4), strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise Base64Error("invalid base64url") from exc


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
