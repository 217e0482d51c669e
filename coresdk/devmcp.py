"""An example MCP server for `coresdk dev`: two tools behind the gateway, approved by signed manifests.

`echo` returns its text; `query` (tagged `sql`) pretends to run one read-only statement against a demo database and
echoes it — the gateway lets only a single read-only statement reach it. Streamable HTTP (the official `mcp` SDK,
installed with the test tools by scripts/bootstrap) on CORESDK_DEV_MCP_ADDR (default 127.0.0.1:9100), path
/mcp/v1/rpc, the path the gateway's route map guards.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from coresdk.config.env import split_host_port

SERVER = "demo"  # the server name in the route map and in the manifests
PATH = "/mcp/v1/rpc"
TAGS = {"echo": [], "query": ["sql"]}


def build_server() -> Any:
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="coresdk-dev-mcp", version="1.0", log_level="WARNING")

    async def echo(text: str) -> str:
        return text

    async def query(sql: str) -> str:
        return f"(demo) would run: {sql}"

    server.add_tool(echo, name="echo", description="Echo the given text back.")
    server.add_tool(query, name="query", description="Run one read-only SQL statement against the demo database.")
    return server


def tool_definitions() -> list[dict[str, Any]]:
    """The tools as tools/list shows them (name, description, inputSchema): what the manifests pin."""
    listed = asyncio.run(build_server().list_tools())
    return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in listed]


def write_dev_manifests(data: Path) -> dict[str, str]:
    """A signing key (kept, 0600), one signed manifest per tool and the trust file, in the data directory; returns
    the gateway's CORESDK_MANIFEST_KEYS / CORESDK_MANIFEST_DIR."""
    from nacl.signing import SigningKey

    from coresdk.mcp import manifest as m

    key_path = data / "manifest-signing.key"
    if not key_path.exists():
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(m.encode_private_key(SigningKey.generate()))
    key = m.decode_private_key(key_path.read_text().strip())
    directory = data / "manifests"
    directory.mkdir(exist_ok=True)
    for tool in tool_definitions():
        name = tool["name"]
        manifest = m.build_manifest(
            id=f"dev-{SERVER}-{name}",
            server=SERVER,
            tool=name,
            version="1.0",
            description=tool.get("description"),
            input_schema=tool["inputSchema"],
            tags=TAGS[name],
            sql_argument="sql" if "sql" in TAGS[name] else None,
        )
        (directory / f"{name}.json").write_text(json.dumps(m.sign_manifest(manifest, key), indent=2))
    trust = data / "manifest-trust.json"
    trust.write_text(json.dumps({"keys": [m.encode_public_key(key.verify_key)], "revoked": []}))
    return {"CORESDK_MANIFEST_KEYS": str(trust), "CORESDK_MANIFEST_DIR": str(directory)}


def main() -> int:
    import uvicorn

    host, port = split_host_port(os.environ.get("CORESDK_DEV_MCP_ADDR", "127.0.0.1:9100"), "CORESDK_DEV_MCP_ADDR")
    app = build_server().streamable_http_app(streamable_http_path=PATH, json_response=False)

    async def healthz(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def routed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/healthz":
            await healthz(scope, receive, send)
        else:
            await app(scope, receive, send)

    uvicorn.run(routed, host=host, port=port, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
