"""Bounded cache of verified tokens, so a token seen again costs a hash and a dict lookup.

Keyed by SHA-256 of (audience, token) — the token itself is never kept. An entry lives until the token's exp and
dies early when the key that verified it leaves its issuer's JWKS.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from coresdk.v1.common_pb2 import Principal


@dataclass(frozen=True, slots=True)
class CachedPrincipal:
    """A verified token's answer: the Principal, and the same Principal serialised once (what a gRPC face sends
    back for every later hit without serialising it again)."""

    principal: Principal
    issuer: str
    thumbprint: str
    exp: float
    wire: bytes


def cache_key(token: str, audience: str) -> bytes:
    return hashlib.sha256(f"{audience}\x00{token}".encode()).digest()


def entry(principal: Principal, issuer: str, thumbprint: str, exp: float) -> CachedPrincipal:
    return CachedPrincipal(principal, issuer, thumbprint, exp, principal.SerializeToString())


class VerifiedCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[bytes, CachedPrincipal] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, now: float) -> CachedPrincipal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.exp:
            del self._entries[key]
            return None
        return entry

    def put(self, key: bytes, entry: CachedPrincipal) -> None:
        if self._capacity <= 0:
            return
        self._entries[key] = entry
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def drop_keys_not_in(self, issuer: str, live_thumbprints: frozenset[str]) -> int:
        dead = [k for k, e in self._entries.items() if e.issuer == issuer and e.thumbprint not in live_thumbprints]
        for k in dead:
            del self._entries[k]
        return len(dead)
