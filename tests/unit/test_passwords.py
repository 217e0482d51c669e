"""Password hashing (controlplane.passwords): Argon2id, and a malformed stored hash is a mismatch, not an error."""

from __future__ import annotations

from controlplane.passwords import DUMMY_HASH, hash_password, verify_password


async def test_a_password_verifies_against_its_own_hash_only() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$") and "correct" not in stored
    assert await verify_password(stored, "correct horse battery")
    assert not await verify_password(stored, "correct horse batterY")
    assert not await verify_password(DUMMY_HASH, "correct horse battery")


async def test_a_malformed_hash_is_a_mismatch() -> None:
    for stored in ("", "plain", "$argon2id$v=19$broken"):
        assert not await verify_password(stored, "anything")
