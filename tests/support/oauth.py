"""OAuth client-side helpers for tests: a real Authlib client plus a person at the sign-in page."""

from __future__ import annotations

import secrets
from typing import Any

import jwt
from authlib.integrations.requests_client import OAuth2Session

from tests.support.browser import sign_in
from tests.support.controlplane import ControlPlaneProcess

REDIRECT = "https://app.example/callback"
PASSWORD = "correct horse battery staple"


def verify_access_token(cp: ControlPlaneProcess, token: str) -> dict[str, Any]:
    """Check a token the way any relying party would: JWKS from the control plane, RS256, iss, aud."""
    jwks = jwt.PyJWKClient(f"{cp.url}/api/v1/jwks")
    key = jwks.get_signing_key_from_jwt(token)
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], issuer=cp.url, audience="coresdk")
    return claims


def pkce_session(cp: ControlPlaneProcess, app: dict[str, Any], scope: str = "orders:read") -> OAuth2Session:
    return OAuth2Session(
        app["client_id"],
        app.get("client_secret"),
        scope=scope,
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if app.get("client_secret") else "none",
    )


def authorize(cp: ControlPlaneProcess, client: OAuth2Session, user: str) -> tuple[str, str, str]:
    """Returns (redirect location, state, verifier)."""
    verifier = secrets.token_urlsafe(48)
    uri, state = client.create_authorization_url(f"{cp.url}/v1/oauth/authorize", code_verifier=verifier)
    resp = sign_in(uri, user, PASSWORD)
    assert resp.status_code == 302, resp.text
    return resp.headers["Location"], state, verifier


def full_flow(
    cp: ControlPlaneProcess, app: dict[str, Any], user: str, scope: str = "orders:read"
) -> tuple[OAuth2Session, dict[str, Any]]:
    client = pkce_session(cp, app, scope)
    location, state, verifier = authorize(cp, client, user)
    token = client.fetch_token(
        f"{cp.url}/v1/oauth/token", authorization_response=location, code_verifier=verifier, state=state
    )
    return client, dict(token)
