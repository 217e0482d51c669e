"""Request bodies within CORESDK_GATEWAY_MAX_BODY, whatever their framing.

A declared Content-Length over the limit is refused before anything else. A chunked body has no declared length,
so it is read (up to the limit plus one byte) before anything is forwarded: past the limit the answer is 413 and
not one byte reached the upstream. A body with a Content-Length within the limit is streamed; the HTTP parser
stops it at the declared length.
"""

from __future__ import annotations

from aiohttp import StreamReader, web

from coresdk import reasons
from coresdk.errors import InvalidArgument


class BodyTooLarge(InvalidArgument):
    def __init__(self, limit: int) -> None:
        super().__init__(reasons.BODY_TOO_LARGE, f"body exceeds {limit} bytes")


def declared_too_large(request: web.BaseRequest, limit: int) -> bool:
    return request.content_length is not None and request.content_length > limit


async def bounded_body(request: web.BaseRequest, limit: int) -> bytes | StreamReader | None:
    """None without a body; the stream when its length is declared; the whole chunked body read within the limit."""
    if not request.body_exists:
        return None
    if request.content_length is not None:
        if request.content_length > limit:
            raise BodyTooLarge(limit)
        return request.content
    data = bytearray()
    while len(data) <= limit:
        chunk = await request.content.read(min(65536, limit + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
    raise BodyTooLarge(limit)


async def whole_body(request: web.BaseRequest, limit: int) -> bytes:
    """The whole body within the limit, whatever its framing (for a body the gateway must read before deciding)."""
    body = await bounded_body(request, limit)
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return await body.read()
