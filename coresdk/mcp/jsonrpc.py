"""JSON-RPC 2.0 bodies as the gateway must see them before it forwards anything to an MCP server.

The gateway authorizes what the *server* will act on, so it must read the body exactly as the server will: no
duplicate object keys (parsers disagree on which one wins), no NaN/Infinity, UTF-8 only, a bounded size and batch
length, and ids that are unique within a batch (responses are matched to requests by id when `tools/list` answers
are filtered). Anything else is refused as a whole with a typed error that maps to one JSON-RPC error object;
a body is never partly forwarded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from coresdk.errors import InvalidArgument

VERSION = "2.0"
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_BATCH = 32

Kind = Literal["request", "notification", "response"]
MessageId = str | int


class JsonRpcError(InvalidArgument):
    """A body or message the gateway will not forward. `code` is the JSON-RPC error code, `http_status` the status
    the HTTP edge answers with, `id` the offending request's id when it could be read (else None)."""

    code_number: int = INVALID_REQUEST
    http_status: int = 400

    def __init__(self, reason: str, message: str, id: MessageId | None = None) -> None:
        super().__init__(reason, message)
        self.id = id

    def to_response(self) -> dict[str, Any]:
        return error_response(self.id, self.code_number, self.message)


class ParseError(JsonRpcError):
    code_number = PARSE_ERROR


class InvalidRequest(JsonRpcError):
    code_number = INVALID_REQUEST


class BodyTooLarge(InvalidRequest):
    http_status = 413


class InvalidParams(JsonRpcError):
    code_number = INVALID_PARAMS


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One validated JSON-RPC message. `raw` is the decoded object, unchanged, for forwarding."""

    kind: Kind
    id: MessageId | None
    method: str | None
    params: dict[str, Any] | list[Any] | None
    raw: dict[str, Any]

    @property
    def tool_call(self) -> ToolCall | None:
        """The tool name and arguments of a `tools/call` request (validated by `parse_message`), else None."""
        if self.method != "tools/call" or not isinstance(self.params, dict):
            return None
        return ToolCall(self.params["name"], self.params.get("arguments") or {})


@dataclass(frozen=True)
class Body:
    messages: tuple[Message, ...]
    batch: bool

    @property
    def requests(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.kind == "request")


def error_response(id: MessageId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response object; `id` is None (JSON null) when the request's id could not be read."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": VERSION, "id": id, "error": error}


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Strict JSON: UTF-8, bounded, no duplicate keys, no NaN/Infinity. Duplicate keys are an invalid request
    (the JSON is well-formed but ambiguous); everything else that fails is a parse error."""
    if len(raw) > max_bytes:
        raise BodyTooLarge("JSONRPC_TOO_LARGE", f"body larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("JSONRPC_PARSE_ERROR", "body is not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise InvalidRequest("JSONRPC_INVALID_REQUEST", f"duplicate member {str(exc)[:64]!r}") from None
    except RecursionError:
        raise ParseError("JSONRPC_PARSE_ERROR", "body nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise ParseError("JSONRPC_PARSE_ERROR", f"not JSON: {str(exc)[:120]}") from None


def _readable_id(value: Mapping[str, Any]) -> MessageId | None:
    id = value.get("id")
    return id if isinstance(id, str) or (isinstance(id, int) and not isinstance(id, bool)) else None


def parse_message(value: Any) -> Message:
    """Validate one decoded JSON-RPC message (also used for the data of an SSE event) and classify it."""
    if not isinstance(value, dict):
        raise InvalidRequest("JSONRPC_INVALID_REQUEST", "a message must be a JSON object")
    id = _readable_id(value)

    def invalid(why: str) -> InvalidRequest:
        return InvalidRequest("JSONRPC_INVALID_REQUEST", why, id)

    if value.get("jsonrpc") != VERSION:
        raise invalid('"jsonrpc" must be "2.0"')
    if "id" in value and id is None and not (value["id"] is None and "error" in value and "method" not in value):
        # MCP forbids null ids (only an error answering an unreadable request has one); fractional or boolean ids
        # cannot be matched reliably.
        raise invalid('"id" must be a string or an integer')
    if "method" in value:
        method = value["method"]
        if not isinstance(method, str) or not method:
            raise invalid('"method" must be a non-empty string')
        if "result" in value or "error" in value:
            raise invalid("a request carries no result or error")
        params = value.get("params")
        if "params" in value and not isinstance(params, dict | list):
            raise invalid('"params" must be an object or an array')
        if set(value) - {"jsonrpc", "id", "method", "params"}:
            raise invalid("unknown members in a request")
        message = Message("request" if "id" in value else "notification", id, method, params, value)
        if method == "tools/call":
            _check_tool_call(message)
        return message
    if "id" not in value:
        raise invalid('a message needs "method" or "id"')
    if ("result" in value) == ("error" in value):
        raise invalid('a response carries exactly one of "result" and "error"')
    if "error" in value and not _is_error_object(value["error"]):
        raise invalid('"error" must be an object with an integer code and a string message')
    if set(value) - {"jsonrpc", "id", "result", "error"}:
        raise invalid("unknown members in a response")
    return Message("response", id, None, None, value)


def _is_error_object(error: Any) -> bool:
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), int)
        and not isinstance(error.get("code"), bool)
        and isinstance(error.get("message"), str)
    )


def _check_tool_call(message: Message) -> None:
    params = message.params
    if message.kind != "request":
        raise InvalidRequest("JSONRPC_INVALID_REQUEST", "tools/call must be a request with an id")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str) or not params["name"]:
        raise InvalidParams("JSONRPC_INVALID_PARAMS", "tools/call needs params.name (a string)", message.id)
    if "arguments" in params and not isinstance(params["arguments"], dict):
        raise InvalidParams("JSONRPC_INVALID_PARAMS", "tools/call params.arguments must be an object", message.id)


def parse_body(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_batch: int = DEFAULT_MAX_BATCH) -> Body:
    """Read a whole JSON-RPC body (one message or a batch) or refuse it as a whole."""
    value = decode_json(raw, max_bytes)
    if not isinstance(value, list):
        return Body((parse_message(value),), batch=False)
    if not value:
        raise InvalidRequest("JSONRPC_INVALID_REQUEST", "an empty batch")
    if len(value) > max_batch:
        raise InvalidRequest("JSONRPC_INVALID_REQUEST", f"a batch holds at most {max_batch} messages")
    messages = tuple(parse_message(item) for item in value)
    ids = [m.id for m in messages if m.id is not None]
    if len(ids) != len(set(ids)):
        raise InvalidRequest("JSONRPC_INVALID_REQUEST", "ids repeat within a batch")
    return Body(messages, batch=True)
