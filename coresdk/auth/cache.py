"""Bounded cache of verified tokens, so a token seen again costs a hash and a dict lookup.

Keyed by SHA-256 of (audience, token) — the token itself is never kept. An entry lives until the token's exp and
dies early when the key that verified it leaves its issuer's JWKS.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from coresdk.v1.common_pb2 import Principal


class CachedPrincipal:
    """A verified token's answer: the Principal serialised once (what a gRPC face sends back for every later hit
    without serialising it again), and the Principal message itself, built from those bytes only when a face asks
    for it (an answer verified in a worker process arrives as bytes)."""

    __slots__ = ("_principal", "exp", "issuer", "thumbprint", "token_id", "wire")

    def __init__(
        self, issuer: str, thumbprint: str, exp: float, wire: bytes, token_id: str, principal: Principal | None = None
    ) -> None:
        self.issuer = issuer
        self.thumbprint = thumbprint
        self.exp = exp
        self.wire = wire
        self.token_id = token_id
        self._principal = principal

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            self._principal = Principal.FromString(self.wire)
        return self._principal


def cache_key(token: str, audience: str) -> bytes:
    return hashlib.sha256(f"{audience}\x00{token}".encode()).digest()


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
