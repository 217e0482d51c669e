"""A real MCP server for the tests (official `mcp` SDK, Streamable HTTP) on a free loopback port, in a thread.

Tools: `echo` (plain), `query` (tagged `sql` in its manifest; argument `sql`; it only records and echoes the
statement), and `count` (streams progress notifications before its answer, so the response is a multi-event SSE
stream). Every call that reaches the server is recorded in `calls`, so a test can prove a refused call was never
forwarded. `set_description` changes a tool's description at run time (a server drifting after approval).

`signed_manifests` and `write_trust` build the signed manifests and trust file for these tools.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from nacl.signing import SigningKey

from coresdk.mcp import manifest as m
from tests.support.ports import free_port

SERVER_NAME = "demo"
VERSION = "1.0"
TAGS: dict[str, list[str]] = {"echo": [], "query": ["sql"], "count": []}
DESCRIPTIONS = {
    "echo": "Echo the given text back.",
    "query": "Run one read-only SQL statement against the demo database.",
    "count": "Count to n, reporting progress at each step.",
}


@dataclass
class Call:
    tool: str
    arguments: dict[str, Any]


@dataclass
class McpTestServer:
    """Start with `start()`, stop with `stop()`; `url` is the Streamable HTTP endpoint."""

    json_response: bool = False  # False: answers are SSE streams (the SDK's default)
    stateless: bool = False
    port: int = field(default_factory=free_port)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mcp = MCPServer(name="coresdk-test-mcp", version=VERSION, log_level="WARNING")
        self._fns: dict[str, Callable[..., Any]] = {"echo": self._echo, "query": self._query, "count": self._count}
        for name, fn in self._fns.items():
            self.mcp.add_tool(fn, name=name, description=DESCRIPTIONS[name])
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def _echo(self, text: str) -> str:
        self._record("echo", {"text": text})
        return text

    async def _query(self, sql: str) -> str:
        self._record("query", {"sql": sql})
        return f"ran: {sql}"

    async def _count(self, n: int, ctx: Context) -> str:
        self._record("count", {"n": n})
        for i in range(1, n + 1):
            await ctx.report_progress(i, n, f"step {i}")
            await asyncio.sleep(0)
        return f"counted to {n}"

    def _record(self, tool: str, arguments: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(Call(tool, arguments))

    def calls_to(self, tool: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.arguments for c in self.calls if c.tool == tool]

    def set_description(self, name: str, description: str) -> None:
        """Replace a tool by the same function under a new description: what a server changing a tool after its
        manifest was signed looks like to clients."""
        self.mcp.remove_tool(name)
        self.mcp.add_tool(self._fns[name], name=name, description=description)

    async def tools(self) -> list[dict[str, Any]]:
        """The tools as the wire shows them in tools/list (name, description, inputSchema)."""
        listed = await self.mcp.list_tools()
        return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed]

    def start(self) -> McpTestServer:
        app = self.mcp.streamable_http_app(json_response=self.json_response, stateless_http=self.stateless)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="mcp-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the MCP test server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)


def signed_manifests(
    tools: list[dict[str, Any]], key: SigningKey, server: str = SERVER_NAME, tags: dict[str, list[str]] | None = None
) -> dict[str, dict[str, Any]]:
    """One signed manifest per tool (by name), pinning each tool as `tools` describes it."""
    tags = TAGS if tags is None else tags
    out: dict[str, dict[str, Any]] = {}
    for tool in tools:
        name = tool["name"]
        manifest = m.build_manifest(
            id=f"mf-{server}-{name}",
            server=server,
            tool=name,
            version=VERSION,
            description=tool.get("description"),
            input_schema=tool["inputSchema"],
            tags=tags.get(name, []),
            sql_argument="sql" if "sql" in tags.get(name, []) else None,
        )
        out[name] = m.sign_manifest(manifest, key)
    return out


def write_trust(
    directory: Path, key: SigningKey, manifests: dict[str, dict[str, Any]], revoked: list[str] | None = None
) -> dict[str, str]:
    """Write the trust file and manifest directory; returns the environment that points a service at them."""
    directory.mkdir(parents=True, exist_ok=True)
    trust = directory / "manifest-trust.json"
    trust.write_text(json.dumps({"keys": [m.encode_public_key(key.verify_key)], "revoked": revoked or []}))
    manifest_dir = directory / "manifests"
    manifest_dir.mkdir(exist_ok=True)
    for old in manifest_dir.glob("*.json"):
        old.unlink()
    for name, signed in manifests.items():
        (manifest_dir / f"{name}.json").write_text(json.dumps(signed, indent=2))
    return {"CORESDK_MANIFEST_KEYS": str(trust), "CORESDK_MANIFEST_DIR": str(manifest_dir)}
