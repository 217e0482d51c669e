"""What the gateway lets through in request headers, and what it says itself about the client.

Identity is the gateway's word, never the client's: every header that could carry an identity to the application is
dropped in every spelling before the verified one is set. Spelling matters because servers disagree on it: WSGI and
CGI turn `X_User_ID` and `X-User-ID` into the same `HTTP_X_USER_ID` (and join the two values), so a header name
with an underscore is dropped outright, as nginx does by default. The client's claims about its own address
(`Forwarded`, `X-Forwarded-*`, `X-Real-IP`) are replaced by what the gateway saw.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict

from coresdk.proxies import forwarded_for

IDENTITY_PREFIXES = (
    "x-user",
    "x-tenant",
    "x-scope",
    "x-role",
    "x-client",
    "x-request-id",
    "x-forwarded-user",
    "x-auth",
    "x-remote-user",
    "remote-user",
)
# The client's own account of where it came from: the gateway states this itself.
FORWARDING = ("forwarded", "x-forwarded-", "x-real-ip", "x-client-ip", "true-client-ip", "x-original-")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


def is_identity(name: str) -> bool:
    """True for any spelling of an identity header (case, '_' for '-')."""
    return name.lower().replace("_", "-").startswith(IDENTITY_PREFIXES)


def upstream_headers(
    incoming: Mapping[str, str],
    identity: Mapping[str, str],
    client: str,
    proto: str,
    host: str,
    keep_authorization: bool = False,
) -> CIMultiDict[str]:
    """The headers sent upstream: the client's, minus hop-by-hop, identity and forwarding ones, plus the gateway's.
    A header the client sent twice goes on twice: collapsing it would pick one reading for the upstream (the last)
    while the client's other reading was never seen."""
    named_in_connection = {
        token.strip().lower() for value in _all(incoming, "connection") for token in value.split(",") if token.strip()
    }
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        lower = name.lower()
        if (
            "_" in name
            or lower in HOP_BY_HOP
            or lower in named_in_connection
            or is_identity(lower)
            or lower.startswith(FORWARDING)
            or (lower == "authorization" and not keep_authorization)
        ):
            continue
        out.add(name, value)
    for name, value in identity.items():
        out[name] = value
    out["Forwarded"] = f"{forwarded_for(client)};proto={proto}" + (
        f';host="{host}"' if host and '"' not in host else ""
    )
    out["X-Forwarded-For"] = client
    out["X-Forwarded-Proto"] = proto
    if host:
        out["X-Forwarded-Host"] = host
    return out


def _all(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = headers.get(name)
    return [value] if value is not None else []
