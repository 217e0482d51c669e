"""Keys the control plane derives from its server secret (controlplane.secrets.derive_key): one function, one
purpose per key, and values that never change (stored hashes, sealed values and checkpoints depend on them)."""

from __future__ import annotations

import hashlib
import hmac

from controlplane.audit.checkpoints import checkpoint_key
from controlplane.secrets import ServerKeys, derive_key

SECRET = b"s" * 32
# computed with the derivations as they were before they were unified
TOKEN_KEY_PREFIX = "602ccb4240dd0c59"
CHECKPOINT_KEY_PREFIX = "e924ff4ced99d70a"


def test_each_purpose_gets_its_own_key() -> None:
    keys = {derive_key(SECRET, p) for p in ("client-secret-pepper", "token-hash", "seal")}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    assert derive_key(SECRET, "seal") != derive_key(b"t" * 32, "seal")


def test_the_derived_values_are_those_already_in_use() -> None:
    # fixed vectors: a change here would orphan every stored hash and sealed value, and the checkpoint key
    token_key = derive_key(SECRET, "token-hash")
    assert ServerKeys(SECRET).hash_token("x") == hmac.new(token_key, b"x", hashlib.sha256).hexdigest()
    assert derive_key(SECRET, "token-hash").hex()[:16] == TOKEN_KEY_PREFIX
    assert bytes(checkpoint_key(SECRET).verify_key).hex()[:16] == CHECKPOINT_KEY_PREFIX
