"""The authorization request for one MCP tool call: resource, action and the context Rego decides on.

Resource names are `[a-z][a-z0-9_.-]{0,63}` in the sidecar, so `mcp.tool:<name>` (with ':' the separator of a
`resource:action` scope) cannot be one. A tool is the resource `mcp.tool.<name>` instead: the scope that lets a
token call it is `mcp.tool.<name>:call`, so a token for one tool is not a token for every tool, and Rego still finds
the name in `input.context.tool`. A tool whose name cannot be written that way (upper case, other characters,
longer than 55 characters) is refused rather than folded into another tool's name.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from coresdk.audit.canonical import canonical_bytes
from coresdk.errors import InvalidArgument
from coresdk.mcp.jsonrpc import ToolCall
from coresdk.mcp.manifest import VerifiedManifest
from coresdk.mcp.sql_guard import SqlRefused, classify

RESOURCE_PREFIX = "mcp.tool."
ACTION = "call"
_TOOL_NAME = re.compile(r"[a-z0-9_.-]{1,55}")


class ToolNameUnsupported(InvalidArgument):
    """The tool's name cannot be a resource name; the tool cannot be authorized, so it is not offered or called."""


def tool_resource(name: str) -> str:
    if not _TOOL_NAME.fullmatch(name):
        raise ToolNameUnsupported(
            "MCP_TOOL_NAME_UNSUPPORTED", "tool names must be 1 to 55 characters of a-z 0-9 _ . - to be authorized"
        )
    return RESOURCE_PREFIX + name


def arguments_digest(arguments: dict[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical arguments, for the audit record: the same call, the same digest."""
    return hashlib.sha256(canonical_bytes(arguments)).hexdigest()


def call_context(call: ToolCall, manifest: VerifiedManifest) -> dict[str, Any]:
    """`input.context` for a tool call. For a tool tagged `sql`, the statement in its SQL argument (the manifest's
    `sql_argument`, default `sql`) is classified; a missing, unparsable or multi-statement one is SqlRefused."""
    context: dict[str, Any] = {"tool": call.name, "arguments": call.arguments, "tags": list(manifest.tags)}
    if "sql" in manifest.tags:
        argument = manifest.sql_argument or "sql"
        if argument not in call.arguments:
            raise SqlRefused("SQL_UNPARSABLE", f"the SQL argument {argument!r} is missing")
        context["sql"] = classify(call.arguments[argument])
    return context


def authorization_request(call: ToolCall, manifest: VerifiedManifest) -> tuple[str, str, dict[str, Any]]:
    """(resource, action, context) for PolicyService.Authorize."""
    return tool_resource(call.name), ACTION, call_context(call, manifest)
