"""Strict JOSE primitives: base64url, JWK/JWKS validation and JWS (compact) signature verification.

Only RS256, ES256 and PS256 exist here. Anything else is refused before any cryptography runs.
"""

ALLOWED_ALGS: frozenset[str] = frozenset({"RS256", "ES256", "PS256"})
