"""Registering generated services so that undecodable requests get INVALID_ARGUMENT, not UNKNOWN, and so that a
handler may answer with bytes it serialised earlier.

grpcio turns a request that fails to parse (e.g. a string field holding invalid UTF-8) into status UNKNOWN before
any servicer code runs. Here every unary handler's deserializer is wrapped: a DecodeError becomes a marker that
the wrapped behaviour answers with INVALID_ARGUMENT / MALFORMED_REQUEST, so bad input always gets a precise error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from coresdk.errors import InvalidArgument
from sidecar.grpc_errors import abort

MALFORMED_REQUEST = "MALFORMED_REQUEST"


class _Undecodable:
    pass


_UNDECODABLE = _Undecodable()


def _safe_deserializer(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _UNDECODABLE

    return parse


def _guarded(behaviour: Callable[..., Any]) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if request is _UNDECODABLE:
            await abort(
                context, InvalidArgument(MALFORMED_REQUEST, "request could not be decoded (invalid protobuf or UTF-8)")
            )
        return await behaviour(request, context)

    return handle


def _passing_bytes(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A handler may answer with the message already serialised (a cached Principal): those bytes go out as they are."""

    def encode(message: Any) -> bytes:
        return message if type(message) is bytes else serialize(message)

    return encode


class _Capture:
    """Stands in for the server while a generated add_*_to_server registers its handlers."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        return None

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.service, self.handlers = service, handlers


def add_service(add_to_server: Callable[[Any, Any], None], servicer: Any, server: grpc.aio.Server) -> None:
    capture = _Capture()
    add_to_server(servicer, capture)
    handlers = {}
    for name, handler in capture.handlers.items():
        if handler.response_serializer is not None:
            handler = handler._replace(response_serializer=_passing_bytes(handler.response_serializer))
        if not handler.request_streaming and not handler.response_streaming:
            handler = handler._replace(
                request_deserializer=_safe_deserializer(handler.request_deserializer),
                unary_unary=_guarded(handler.unary_unary),
            )
        handlers[name] = handler
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(capture.service, handlers),))
    server.add_registered_method_handlers(capture.service, handlers)
