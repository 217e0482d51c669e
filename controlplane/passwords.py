"""Password hashing for the sign-in page's users: Argon2id (argon2-cffi defaults), verified off the event loop.

A sign-in for a subject that does not exist is verified against a dummy hash, so an unknown user and a wrong
password cost the same time and cannot be told apart.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
DUMMY_HASH = _HASHER.hash("coresdk-no-such-user")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


async def verify_password(password_hash: str, password: str) -> bool:
    """Whether password matches; a malformed stored hash is a mismatch, never an error."""

    def check() -> bool:
        try:
            return _HASHER.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(None, check)
