"""PKCE (RFC 7636) with S256 only, in one place: the challenge the authorization endpoint accepts, and the
verifier the token endpoint checks against it. plain and missing challenges are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
METHODS = ("S256",)


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.fullmatch(challenge))


def challenge_problem(challenge: str, method: str | None) -> str | None:
    """Why an authorization request's code_challenge (and method) is refused, or None (RFC 7636 §4.3, S256 only)."""
    if not challenge:
        return "PKCE code_challenge is required"
    if method not in METHODS:
        return "code_challenge_method must be S256"
    if not valid_challenge(challenge):
        return "code_challenge must be a base64url SHA-256 value"
    return None


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def verify(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6: the verifier is well formed and its S256 digest equals the stored challenge (constant time)."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
