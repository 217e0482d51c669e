"""Forwarding an allowed request: exactly the matched target, the gateway's headers, a bounded body, and an audit
record written once the upstream's status is known and before its body is relayed (an unauditable answer is 503).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from coresdk.proxies import TrustedProxies
from gateway.audit import RequestRecord
from gateway.body import BodyTooLarge, bounded_body
from gateway.headers import HOP_BY_HOP, upstream_headers
from gateway.paths import Target
from gateway.refusals import Refusal, unavailable

log = logging.getLogger("coresdk.gateway")
HSTS = "max-age=63072000; includeSubDomains"
Audit = Callable[[RequestRecord, int], Awaitable[bool]]
Rewrite = Callable[[str, bytes], bytes]  # (content type, whole answer) → answer to relay
MAX_REWRITE = 16 * 1024 * 1024
MAX_WHOLE = 64 * 1024  # an answer up to this declared length is read whole and relayed in one write; longer: streamed


class Proxy:
    def __init__(self, session: aiohttp.ClientSession, max_body: int, trusted: TrustedProxies, audit: Audit) -> None:
        self._session = session
        self._max_body = max_body
        self._trusted = trusted
        self._audit = audit

    async def forward(
        self,
        request: web.BaseRequest,
        base: str,
        target: Target,
        identity: Mapping[str, str],
        record: RequestRecord,
        keep_authorization: bool = False,
        body: bytes | None = None,
        rewrite: Rewrite | None = None,
    ) -> web.StreamResponse:
        """keep_authorization only for the control plane (client authentication); the application never gets it.
        body: already read (and judged) by the caller; rewrite: the answer is read whole and rewritten before it is
        relayed (an MCP tools/list filtered to what the caller may use)."""
        if body is None:
            try:
                body = await bounded_body(request, self._max_body)  # type: ignore[assignment]
            except BodyTooLarge as err:
                raise Refusal(413, "request_too_large", err.message, err.reason) from None
        sent_proto = request.headers.get("X-Forwarded-Proto", "")
        trusted = bool(self._trusted.networks) and self._trusted.trusts(request.remote or "")
        headers = upstream_headers(
            request.headers,
            identity,
            client=record.ip,
            proto=sent_proto if trusted and sent_proto in ("http", "https") else request.scheme,
            host=request.headers.get("Host", ""),
            keep_authorization=keep_authorization,
        )
        # encoded=True: no re-normalisation (dot removal, re-quoting): the bytes matched are the bytes sent
        url = URL(base + target.raw, encoded=True)
        relayed = False
        try:
            async with self._session.request(
                request.method, url, headers=headers, data=body, allow_redirects=False
            ) as upstream:
                if not await self._audit(record, upstream.status):
                    raise unavailable("the audit trail", "AUDIT_UNAVAILABLE")
                relay = CIMultiDict[str]()
                for k, v in upstream.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        relay.add(k, v)
                relay["Strict-Transport-Security"] = HSTS
                if rewrite is not None:
                    data = rewrite(upstream.headers.get("Content-Type", ""), await upstream.content.read(MAX_REWRITE))
                    relayed = True
                    return await _whole(request, upstream, relay, data)
                length = upstream.content_length
                if length is not None and length <= MAX_WHOLE and _has_body(request.method, upstream.status):
                    # a small answer of declared length: read whole, relayed with its length in one write
                    data = await upstream.read()  # an answer cut short is ClientPayloadError: 502, nothing sent yet
                    relayed = True
                    return await _whole(request, upstream, relay, data)
                relayed = True
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=relay)
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(65536):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("upstream unavailable: %s", type(exc).__name__)
            if relayed:  # the status is already audited and on its way; the connection is cut
                raise
            record.outcome = "error"
            raise Refusal(502, "bad_gateway", "the upstream did not answer", "UPSTREAM_UNAVAILABLE") from None


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status >= 200 and status not in (204, 304)


async def _whole(
    request: web.BaseRequest, upstream: aiohttp.ClientResponse, headers: CIMultiDict[str], data: bytes
) -> web.StreamResponse:
    """The answer relayed whole: headers and body leave in one write, with their Content-Length."""
    response = web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=data)
    await response.prepare(request)  # prepared here: the gateway's own defaults (hardening) are not added
    await response.write_eof()
    return response
