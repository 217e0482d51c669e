"""Publish, then activate (issue 14): a rotated-in key is in the JWKS at once but signs only from its activation
time, the previous key signs until then and stays published after; replicas that import one key file together store
it once. On the SQLite store, no process needed."""

from __future__ import annotations

import time
from pathlib import Path

from controlplane.keys.manager import KeyManager
from controlplane.store.rate_limits import MemoryRateBuckets
from tests.unit.oauth_harness import open_services


async def test_a_rotated_key_is_published_before_it_signs(tmp_path: Path) -> None:
    services = await open_services(f"sqlite:///{tmp_path / 'cp.db'}", tmp_path)
    keys = services.keys
    old = keys.active.kid
    new, activates_at = await keys.rotate()
    now = time.time()
    assert activates_at - now > 200  # one JWKS max-age ahead by default
    assert keys.active.kid == old
    assert {k.kid for k in keys.public_keys(now)} == {old, new.kid}
    assert {d["kid"]: d["status"] for d in keys.describe(now)} == {old: "active", new.kid: "next"}
    assert keys.signing_key(activates_at).kid == new.kid
    assert {k.kid for k in keys.public_keys(activates_at + 60)} == {old, new.kid}  # old tokens still verify
    # another replica on the same store, started now, agrees on both
    other = KeyManager(services.store, services.server_keys)
    await other.reload()
    assert other.signing_key(now).kid == old and other.signing_key(activates_at).kid == new.kid
    await services.store.db.close()


async def test_two_replicas_importing_one_key_file_store_it_once(tmp_path: Path) -> None:
    services = await open_services(f"sqlite:///{tmp_path / 'cp.db'}", tmp_path)
    again = KeyManager(services.store, services.server_keys)
    await again.start(tmp_path / "signing-key.pem", None)
    assert [d["kid"] for d in again.describe()] == [services.keys.active.kid]
    await services.store.db.close()


async def test_memory_buckets_refuse_past_the_burst_with_a_retry_after() -> None:
    buckets = MemoryRateBuckets()
    answers = [await buckets.take("client:a", 0.5, 3) for _ in range(5)]
    assert answers[:3] == [None, None, None]
    assert all(isinstance(a, int) and a >= 1 for a in answers[3:])
    assert await buckets.take("client:b", 0.5, 3) is None  # buckets are per key
