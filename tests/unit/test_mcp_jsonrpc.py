"""JSON-RPC 2.0 bodies are read strictly and refused as a whole, with the right JSON-RPC error code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.mcp import jsonrpc
from coresdk.mcp.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    BodyTooLarge,
    JsonRpcError,
    ToolCall,
    parse_body,
)


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def refusal(raw: bytes, **limits: int) -> JsonRpcError:
    with pytest.raises(JsonRpcError) as err:
        parse_body(raw, **limits)
    return err.value


def test_a_tool_call_is_classified_with_its_name_and_arguments() -> None:
    parsed = parse_body(
        body(
            {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "query", "arguments": {"sql": "x"}}}
        )
    )
    assert not parsed.batch and len(parsed.messages) == 1
    msg = parsed.messages[0]
    assert (msg.kind, msg.id, msg.method) == ("request", 7, "tools/call")
    assert msg.tool_call == ToolCall("query", {"sql": "x"})
    no_args = parse_body(body({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "echo"}}))
    assert no_args.messages[0].tool_call == ToolCall("echo", {})


def test_requests_notifications_and_responses_are_told_apart() -> None:
    parsed = parse_body(
        body(
            [
                {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 2, "result": {}},
                {"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "no"}},
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse"}},
            ]
        )
    )
    assert parsed.batch
    assert [m.kind for m in parsed.messages] == ["request", "notification", "response", "response", "response"]
    assert [m.tool_call for m in parsed.messages] == [None] * 5
    assert [m.id for m in parsed.requests] == [1]


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        (b"{", PARSE_ERROR, "JSONRPC_PARSE_ERROR"),
        (b"", PARSE_ERROR, "JSONRPC_PARSE_ERROR"),
        (b"\xff\xfe{}", PARSE_ERROR, "JSONRPC_PARSE_ERROR"),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"a": NaN}}', PARSE_ERROR, "JSONRPC_PARSE_ERROR"),
        (b"[" * 100000 + b"]" * 100000, PARSE_ERROR, "JSONRPC_PARSE_ERROR"),
        # duplicate members: which one wins differs between parsers, so the gateway and the server could disagree
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "method": "tools/call"}', INVALID_REQUEST, None),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a", "name": "b"}}',
            INVALID_REQUEST,
            None,
        ),
        (b"[]", INVALID_REQUEST, None),
        (b"1", INVALID_REQUEST, None),
        (b'"tools/call"', INVALID_REQUEST, None),
        (b"[1]", INVALID_REQUEST, None),
        (body({"id": 1, "method": "x"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "1.0", "id": 1, "method": "x"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": None, "method": "x"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1.5, "method": "x"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": True, "method": "x"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": [1], "method": "x"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": ""}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": 5}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": "x", "params": "a"}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": "x", "result": {}}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": "x", "extra": 1}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "result": 1, "error": {"code": 1, "message": "m"}}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": 1, "error": {"code": "1", "message": "m"}}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0", "id": None, "result": {}}), INVALID_REQUEST, None),
        (body({"jsonrpc": "2.0"}), INVALID_REQUEST, None),
        (
            body([{"jsonrpc": "2.0", "id": 1, "method": "a"}, {"jsonrpc": "2.0", "id": 1, "method": "b"}]),
            INVALID_REQUEST,
            None,
        ),
        # one bad message refuses the whole batch: nothing is forwarded
        (
            body([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {"jsonrpc": "2.0", "id": 2}]),
            INVALID_REQUEST,
            None,
        ),
        # tools/call needs a name and object arguments, and an id (a notification could not be answered or audited)
        (body({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}), INVALID_PARAMS, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["echo"]}), INVALID_PARAMS, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": ""}}), INVALID_PARAMS, None),
        (body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 3}}), INVALID_PARAMS, None),
        (
            body({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a", "arguments": []}}),
            INVALID_PARAMS,
            None,
        ),
        (body({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "echo"}}), INVALID_REQUEST, None),
    ],
)
def test_malformed_bodies_are_refused_with_the_right_code(raw: bytes, code: int, reason: str | None) -> None:
    err = refusal(raw)
    assert err.code_number == code
    if reason:
        assert err.reason == reason
    response = err.to_response()
    assert response["jsonrpc"] == "2.0" and response["error"]["code"] == code
    assert isinstance(response["error"]["message"], str) and "Traceback" not in response["error"]["message"]
    assert err.http_status == 400


def test_the_error_response_names_the_request_when_its_id_was_readable() -> None:
    err = refusal(body({"jsonrpc": "2.0", "id": "r-9", "method": "tools/call", "params": {"name": 1}}))
    assert err.to_response() == {
        "jsonrpc": "2.0",
        "id": "r-9",
        "error": {"code": INVALID_PARAMS, "message": "tools/call needs params.name (a string)"},
    }
    assert refusal(b"{").to_response()["id"] is None
    assert jsonrpc.error_response(1, -32601, "no such method", {"m": "x"})["error"]["data"] == {"m": "x"}


def test_size_and_batch_length_are_bounded() -> None:
    one = {"jsonrpc": "2.0", "method": "notifications/x"}
    assert len(parse_body(body([one] * 4), max_batch=4).messages) == 4
    assert refusal(body([one] * 5), max_batch=4).code_number == INVALID_REQUEST
    raw = body({"jsonrpc": "2.0", "id": 1, "method": "x", "params": {"p": "a" * 100}})
    assert parse_body(raw, max_bytes=len(raw)).messages[0].method == "x"
    big = refusal(raw, max_bytes=len(raw) - 1)
    assert isinstance(big, BodyTooLarge) and big.http_status == 413 and big.code_number == INVALID_REQUEST


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.one_of(st.integers(), st.text(max_size=4), st.none(), st.floats(allow_nan=False), st.booleans()),
        "method": st.one_of(st.sampled_from(["tools/call", "tools/list", "initialize", ""]), json_values),
        "params": json_values,
        "result": json_values,
        "error": json_values,
        "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(message_like, st.lists(message_like, max_size=4), json_values))
def test_any_input_is_either_a_valid_body_or_one_typed_refusal(value: Any) -> None:
    """Generated messages: either every message is consistent with its classification, or a JsonRpcError (never
    another exception, never a partly accepted batch)."""
    try:
        parsed = parse_body(json.dumps(value).encode())
    except JsonRpcError as err:
        assert err.code_number in (PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS)
        return
    items = value if isinstance(value, list) else [value]
    assert len(parsed.messages) == len(items) and parsed.batch == isinstance(value, list)
    for msg, item in zip(parsed.messages, items, strict=True):
        assert item["jsonrpc"] == "2.0" and msg.raw == item
        if msg.kind == "request":
            assert isinstance(item["method"], str) and type(item["id"]) in (int, str)
        elif msg.kind == "notification":
            assert "id" not in item and isinstance(item["method"], str)
        else:
            assert "method" not in item and ("result" in item) != ("error" in item)
        if item.get("method") == "tools/call":
            call = msg.tool_call
            assert call is not None and isinstance(call.name, str) and call.name and isinstance(call.arguments, dict)
