"""nginx `auth_request` face: the same decision as the proxy, answered instead of forwarded.

nginx sends the original method and request URI (`X-Original-Method`, `X-Original-URI: $request_uri`, the raw
target exactly as the client sent it) and the client address; this endpoint runs the shared pipeline on them and
answers 200 with the identity headers for `auth_request_set`, or the refusal with the proxy's status and body. The
refusal's body is also sent in `X-CoreSDK-Refusal`, because nginx relays only 401 and 403 from an auth subrequest:
the example configuration (config/nginx/) turns every other status back into the same answer from that header.
Each decision is one audit record, written before the answer leaves (no record, no 200).
"""

from __future__ import annotations

import json

from aiohttp import web

from gateway.refusals import Refusal

ORIGINAL_METHOD = "X-Original-Method"
ORIGINAL_URI = "X-Original-URI"
REFUSAL_HEADER = "X-CoreSDK-Refusal"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def original_request(request: web.BaseRequest) -> tuple[str, str]:
    method = request.headers.get(ORIGINAL_METHOD, "")
    uri = request.headers.get(ORIGINAL_URI, "")
    if method not in METHODS or not uri:
        raise Refusal(
            400,
            "invalid_request",
            f"{ORIGINAL_METHOD} and {ORIGINAL_URI} are required (the nginx auth_request configuration)",
            "AUTHZ_REQUEST_INVALID",
        )
    return method, uri


def allowed_response(identity_headers: dict[str, str]) -> web.Response:
    return web.Response(status=200, headers=identity_headers)


def refusal_for_nginx(refusal: Refusal) -> web.Response:
    body = json.dumps(refusal.body())  # ASCII (ensure_ascii): safe in a header
    return web.Response(
        text=body,
        status=refusal.status,
        content_type="application/json",
        headers={**refusal.headers, REFUSAL_HEADER: body},
    )
