"""Authorization server metadata (RFC 8414 §2): what this server supports, derived from its issuer URL.

Every value here is a promise other code keeps: S256 only (controlplane.oauth.pkce), the three grants of
controlplane.oauth.grants, client authentication by controlplane.oauth.clients, and the `iss` response parameter
of RFC 9207 on every authorization response.
"""

from __future__ import annotations

from typing import Any

from controlplane.oauth.pkce import METHODS

GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}/v1/oauth/authorize",
        "token_endpoint": f"{base}/v1/oauth/token",
        "revocation_endpoint": f"{base}/v1/oauth/revoke",
        "introspection_endpoint": f"{base}/v1/oauth/introspect",
        "jwks_uri": f"{base}/api/v1/jwks",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "code_challenge_methods_supported": list(METHODS),
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        # introspection is for confidential clients only (controlplane.oauth.introspection)
        "introspection_endpoint_auth_methods_supported": [m for m in CLIENT_AUTH_METHODS if m != "none"],
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
    }
