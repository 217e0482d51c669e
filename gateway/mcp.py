"""MCP-aware routes: every JSON-RPC message in the body judged on its own, tools trusted only as they were approved.

A route flagged `"mcp": "<server>"` in the route map first needs its own permission (e.g. `mcp:write`), like any
route. Then the body is read (bounded) and parsed strictly as JSON-RPC 2.0 (coresdk.mcp.jsonrpc); malformed is a
JSON-RPC error and nothing is forwarded. Each message:

- `tools/call`: the tool must have a signed, trusted, unrevoked manifest for this server (coresdk.mcp.manifest),
  must not have drifted from it in the last `tools/list` the gateway saw from the server, and the caller must be
  allowed resource `mcp.tool.<name>` action `call` by the engine — built-in rules and Rego, which sees the
  arguments and, for `sql`-tagged tools, the parsed statement (coresdk.mcp.authz). Each call is an audit record
  (tool, decision, argument digest, masked arguments).
- `tools/list`: forwarded; the answer (JSON or SSE) is filtered to the tools with a valid manifest that match it
  and that the caller may call, and what the server said is remembered for drift checks.
- `initialize`, notifications, responses and other methods pass under the route's own permission.

A body is forwarded only if every message in it is allowed (a batch is refused whole), exactly as it arrived. A
refused tool call is answered as JSON-RPC (HTTP 200, error code -32003 with the reason in `data`), as MCP clients
expect a server's refusal; a malformed body is HTTP 400 with a JSON-RPC parse or request error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from coresdk.audit.record import clip
from coresdk.errors import Code, CoreSDKError
from coresdk.mcp import jsonrpc
from coresdk.mcp.authz import arguments_digest, authorization_request, tool_resource
from coresdk.mcp.manifest import ManifestRefused, TrustStore, VerifiedManifest
from coresdk.policy.authorizer import Authorizer
from coresdk.policy.rbac import decide
from coresdk.v1 import common_pb2, policy_pb2

log = logging.getLogger("coresdk.gateway.mcp")
# JSON-RPC implementation-defined server error: the gateway refused the call (its reason is in `data`).
REFUSED = -32003
TOOL_CALL_ACTION = "mcp.tool.call"
# a client chooses a tool's name and arguments: what it sends must never make its own audit record invalid
MAX_AUDITED_ARGUMENTS = 16 * 1024


class McpRefusal(Exception):
    """The body is not forwarded; `body` is the JSON-RPC answer (an object or a batch array)."""

    def __init__(self, status: int, body: Any, reason: str, calls: list[ToolDecision] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.body = body
        self.reason = reason
        self.calls = calls or []


def refusal_calls(refusal: McpRefusal) -> list[ToolDecision]:
    """The tool calls judged before the body was refused (each is audited, allowed or not)."""
    return refusal.calls


@dataclass
class ToolDecision:
    """One tools/call of the body, for the audit trail."""

    tool: str
    allowed: bool
    reason: str
    manifest_id: str
    arguments_sha256: str
    arguments: dict[str, Any]


@dataclass
class McpPlan:
    """What the guard decided for one body: forward it, and filter the answer when it lists tools."""

    lists_tools: bool
    calls: list[ToolDecision] = field(default_factory=list)


def _error(message: jsonrpc.Message, reason: str, text: str) -> dict[str, Any]:
    return jsonrpc.error_response(message.id, REFUSED, text, {"reason": reason})


class McpGuard:
    def __init__(self, trust: TrustStore, authorizer: Authorizer, admin_tenant_bypass: bool, max_body: int) -> None:
        self._trust = trust
        self._authorizer = authorizer
        self._bypass = admin_tenant_bypass
        self._max_body = max_body
        # the tools each server last said it has (name → (description, input schema)): calls are checked against it
        self._listed: dict[str, dict[str, tuple[str | None, Any]]] = {}

    def _manifest(self, server: str, name: str) -> VerifiedManifest:
        """The manifest approving this tool, checked against what the server last listed when it did."""
        listed = self._listed.get(server, {}).get(name)
        if listed is None:
            signed = self._trust.manifest_for(server, name)
            self._trust.check_signature(signed)
            return self._trust.verified(signed)
        return self._trust.verify_tool(server, name, listed[0], listed[1])

    async def _judge_call(
        self, server: str, token: str, request_id: str, message: jsonrpc.Message
    ) -> tuple[ToolDecision, dict[str, Any] | None]:
        call = message.tool_call
        assert call is not None
        digest = arguments_digest(call.arguments)
        try:
            manifest = self._manifest(server, call.name)
            resource, action, context = authorization_request(call, manifest)
            ctx = struct_pb2.Struct()
            ctx.update(context)
            result = await self._authorizer.authorize(
                policy_pb2.AuthorizeRequest(
                    token=token,
                    resource=resource,
                    action=action,
                    tenant_from_token=True,
                    request_id=request_id,
                    context=ctx,
                )
            )
        except (ManifestRefused, CoreSDKError) as err:
            if err.code is Code.UNAVAILABLE:  # the engine cannot judge: an outage (503), not a refusal of this call
                raise
            decision = ToolDecision(call.name, False, err.reason, "", digest, call.arguments)
            return decision, _error(message, err.reason, f"tool call refused ({err.reason}): {err.message}")
        allowed, reason = result.decision.allowed, result.decision.reason
        decision = ToolDecision(call.name, allowed, reason, manifest.id, digest, call.arguments)
        return decision, None if allowed else _error(message, reason, f"tool call not allowed ({reason})")

    async def check(self, server: str, token: str, request_id: str, raw: bytes) -> McpPlan:
        """Raise McpRefusal (nothing forwarded) or return the plan for forwarding this body unchanged."""
        try:
            body = jsonrpc.parse_body(raw, max_bytes=self._max_body)
        except jsonrpc.JsonRpcError as err:
            raise McpRefusal(err.http_status, err.to_response(), err.reason) from None
        plan = McpPlan(lists_tools=any(m.method == "tools/list" for m in body.requests))
        answers: list[dict[str, Any] | None] = []
        for message in body.messages:
            if message.kind == "request" and message.method == "tools/call":
                decision, refused = await self._judge_call(server, token, request_id, message)
                plan.calls.append(decision)
                answers.append(refused)
            else:
                answers.append(None)
        if any(a is not None for a in answers):
            reason = next(c.reason for c in plan.calls if not c.allowed)
            # a refused call is a JSON-RPC answer (HTTP 200), as an MCP client expects an error from the server to be
            if not body.batch:
                raise McpRefusal(200, answers[0], reason, plan.calls)
            batch = [
                a
                if a is not None
                else jsonrpc.error_response(m.id, REFUSED, "batch refused: another message in it was refused")
                for a, m in zip(answers, body.messages, strict=True)
                if m.kind == "request"
            ]
            raise McpRefusal(200, batch, reason, plan.calls)
        return plan

    def _may_call(self, principal: common_pb2.Principal, name: str) -> bool:
        try:
            resource = tool_resource(name)
        except CoreSDKError:
            return False
        return decide(principal, resource, "call", principal.tenant_id, "", self._bypass).allowed

    def _filter_tools(self, server: str, principal: common_pb2.Principal, result: dict[str, Any]) -> None:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return
        seen: dict[str, tuple[str | None, Any]] = {}
        kept = []
        for tool in tools:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                continue
            name = tool["name"]
            seen[name] = (tool.get("description"), tool.get("inputSchema"))
            try:
                self._trust.verify_tool(server, name, tool.get("description"), tool.get("inputSchema"))
            except (ManifestRefused, CoreSDKError) as err:
                log.warning("tools/list: tool dropped server=%s tool=%s reason=%s", server, name, err.reason)
                continue
            if self._may_call(principal, name):
                kept.append(tool)
        self._listed[server] = seen
        result["tools"] = kept

    def _filter_message(self, server: str, principal: common_pb2.Principal, message: Any) -> Any:
        if isinstance(message, dict) and isinstance(message.get("result"), dict) and "tools" in message["result"]:
            self._filter_tools(server, principal, message["result"])
        return message

    def filter_answer(self, server: str, principal: common_pb2.Principal, content_type: str, data: bytes) -> bytes:
        """A tools/list answer with only the tools the caller may use; JSON or an SSE stream of JSON events."""
        if content_type.startswith("application/json"):
            doc = json.loads(data)
            if isinstance(doc, list):
                doc = [self._filter_message(server, principal, m) for m in doc]
            else:
                doc = self._filter_message(server, principal, doc)
            return json.dumps(doc).encode()
        if content_type.startswith("text/event-stream"):
            out = []
            for event in data.decode().split("\n\n"):
                lines = event.split("\n")
                rewritten = []
                for line in lines:
                    if line.startswith("data:"):
                        payload = line[5:].strip()
                        try:
                            doc = json.loads(payload)
                        except ValueError:
                            rewritten.append(line)
                            continue
                        rewritten.append("data: " + json.dumps(self._filter_message(server, principal, doc)))
                    else:
                        rewritten.append(line)
                out.append("\n".join(rewritten))
            return "\n\n".join(out).encode()
        return data

    @staticmethod
    def audit_fields(decision: ToolDecision, request_id: str, server: str, base: Mapping[str, Any]) -> dict[str, Any]:
        """One record per tool call: the decision and a digest of the arguments; the arguments themselves go to
        metadata, where the detectors mask them before hashing."""
        arguments: Any = decision.arguments
        if len(json.dumps(arguments)) > MAX_AUDITED_ARGUMENTS:  # the digest still pins them; the record stays valid
            arguments = {"omitted": "larger than the audit record holds"}
        return {
            "actor": base["actor"],
            "action": TOOL_CALL_ACTION,
            "resource": clip(f"mcp.tool.{decision.tool}"),
            "outcome": "allow" if decision.allowed else "deny",
            "tenant_id": base["tenant_id"],
            "ip": base["ip"],
            "reason": decision.reason,
            "metadata": {
                "request_id": request_id,
                "server": server,
                "tool": clip(decision.tool),
                "manifest_id": decision.manifest_id,
                "arguments_sha256": decision.arguments_sha256,
                "arguments": arguments,
            },
        }
