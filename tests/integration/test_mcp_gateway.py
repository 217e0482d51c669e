"""A real MCP exchange through the gateway: the official `mcp` client with scoped tokens, a real MCP server (Streamable
HTTP, SSE answers) behind it, signed tool manifests, the example Rego rules (read-only SQL for `sql` tools)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from nacl.signing import SigningKey as ManifestKey

from coresdk.audit.journal import Journal
from tests.support.gateway import GatewayProcess
from tests.support.jwks_server import JwksServer
from tests.support.mcp_server import McpTestServer, signed_manifests, write_trust
from tests.support.processes import ROOT, trusting
from tests.support.tokens import SigningKey, claims

ALL_TOOLS = "mcp:write mcp:read mcp.tool.echo:call mcp.tool.query:call mcp.tool.count:call"
POLICIES = ROOT / "config" / "policies"


def routes(tmp: Path) -> Path:
    doc = {
        "resources": ["mcp"],
        "plans": {"p": {"requests_per_minute": 60000, "burst": 10000}},
        "default_plan": "p",
        "routes": [
            {"method": "POST", "path": "/mcp", "permission": "mcp:write", "mcp": "demo"},
            {"method": "GET", "path": "/mcp", "permission": "mcp:read", "mcp": "demo"},
            {"method": "DELETE", "path": "/mcp", "permission": "mcp:write", "mcp": "demo"},
        ],
    }
    path = tmp / "mcp-routes.json"
    path.write_text(json.dumps(doc))
    return path


class McpFront:
    def __init__(self, tmp: Path, jwks: JwksServer, signed: set[str] | None = None) -> None:
        self.server = McpTestServer().start()
        self.key = ManifestKey.generate()
        tools = asyncio.run(self.server.tools())
        manifests = signed_manifests(tools, self.key)
        if signed is not None:
            manifests = {k: v for k, v in manifests.items() if k in signed}
        trust = write_trust(tmp / "trust", self.key, manifests)
        self.gateway = GatewayProcess(
            self.server,
            trusting(jwks.url),
            routes_file=routes(tmp),
            env={
                **trust,
                "CORESDK_POLICY_FILE": str(POLICIES),
                "CORESDK_POLICY_DATA": str(POLICIES / "data.json"),
                "CORESDK_GATEWAY_AUDIT_CHAIN": "mcp-gateway",
                "CORESDK_GATEWAY_MAX_BODY": "1048576",  # as deployed: bodies larger than an audit record
            },
        )

    @property
    def url(self) -> str:
        return f"{self.gateway.url}/mcp"

    def records(self) -> list[dict[str, Any]]:
        entries = Journal(Path(self.gateway.env["CORESDK_DATA_DIR"]) / "gateway-audit", 1 << 30).read_all()
        return [json.loads(e.canonical) for e in entries]

    def stop(self) -> None:
        self.gateway.stop()
        self.server.stop()


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory, jwks: JwksServer) -> Iterator[McpFront]:
    f = McpFront(tmp_path_factory.mktemp("mcp"), jwks, signed={"echo", "query", "count"})
    yield f
    f.stop()


def token(keys: dict[str, SigningKey], scope: str = ALL_TOOLS, **kw: Any) -> str:
    return keys["rs"].sign(claims(scope=scope, **kw))


@asynccontextmanager
async def client(url: str, bearer: str) -> AsyncIterator[Client]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {bearer}"})
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as c:
        yield c


async def refused(call: Any) -> str:
    """The gateway's refusal of a tool call, as the MCP client raises it (a JSON-RPC error)."""
    with pytest.raises(MCPError) as err:
        await call
    return f"{err.value} {err.value.error.data}"


def names(listed: Any) -> list[str]:
    return sorted(t.name for t in listed.tools)


async def test_initialize_list_and_call_through_the_gateway(front: McpFront, keys: dict[str, SigningKey]) -> None:
    async with client(front.url, token(keys)) as c:
        assert names(await c.list_tools()) == ["count", "echo", "query"]
        echoed = await c.call_tool("echo", {"text": "hello"})
        assert not echoed.is_error and echoed.content[0].text == "hello"
        ran = await c.call_tool("query", {"sql": "SELECT id, total FROM orders WHERE id = 1"})
        assert ran.content[0].text.startswith("ran: SELECT")
    assert front.server.calls_to("echo")[-1] == {"text": "hello"}


async def test_a_streamed_answer_passes_through_unchanged(front: McpFront, keys: dict[str, SigningKey]) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with client(front.url, token(keys)) as c:
        result = await c.call_tool("count", {"n": 3}, progress_callback=on_progress)
    assert result.content[0].text == "counted to 3" and progress == [1, 2, 3]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE orders", "SQL_NOT_READ_ONLY"),
        ("DELETE FROM orders", "SQL_NOT_READ_ONLY"),
        ("SELECT 1; DROP TABLE orders", "SQL_MULTIPLE_STATEMENTS"),
        ("SELEC * FRM orders", "SQL_UNPARSABLE"),
        ("WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x", "SQL_NOT_READ_ONLY"),
    ],
)
async def test_sql_that_is_not_one_read_only_statement_never_reaches_the_server(
    front: McpFront, keys: dict[str, SigningKey], sql: str, reason: str
) -> None:
    before = len(front.server.calls_to("query"))
    async with client(front.url, token(keys)) as c:
        assert reason in await refused(c.call_tool("query", {"sql": sql}))
    assert len(front.server.calls_to("query")) == before
    denied = [r for r in front.records() if r["action"] == "mcp.tool.call" and r["outcome"] == "deny"]
    assert denied and denied[-1]["reason"] == reason and denied[-1]["metadata"]["tool"] == "query"


async def test_a_token_without_the_tools_scope_neither_sees_nor_calls_it(
    front: McpFront, keys: dict[str, SigningKey]
) -> None:
    before = len(front.server.calls_to("echo"))
    async with client(front.url, token(keys, scope="mcp:write mcp:read mcp.tool.query:call")) as c:
        assert names(await c.list_tools()) == ["query"]
        assert "SCOPE_MISSING" in await refused(c.call_tool("echo", {"text": "x"}))
    assert len(front.server.calls_to("echo")) == before


async def test_raw_json_rpc_refusals_and_batches(front: McpFront, keys: dict[str, SigningKey]) -> None:
    headers = {
        "Authorization": f"Bearer {token(keys)}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    before = len(front.server.calls)
    async with aiohttp.ClientSession() as http:
        async with http.post(front.url, data=b'{"jsonrpc": "2.0", "id": 1, "method": ', headers=headers) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == -32700
        async with http.post(front.url, data=b'{"jsonrpc": "1.0", "id": 1, "method": "x"}', headers=headers) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == -32600
        call = {"jsonrpc": "2.0", "method": "tools/call"}
        batch = [
            {**call, "id": 1, "params": {"name": "echo", "arguments": {"text": "ok"}}},
            {**call, "id": 2, "params": {"name": "query", "arguments": {"sql": "DROP TABLE orders"}}},
        ]
        async with http.post(front.url, data=json.dumps(batch).encode(), headers=headers) as r:
            answers = await r.json()
            assert r.status == 200 and [a["id"] for a in answers] == [1, 2]
            assert all(a["error"]["code"] == -32003 for a in answers)
            assert answers[1]["error"]["data"]["reason"] == "SQL_NOT_READ_ONLY"
        # a name no manifest can carry is refused as a tool, not blamed on the token (and its audit record is valid)
        huge = {**call, "id": 3, "params": {"name": "q" * 100_000, "arguments": {"sql": "SELECT 1"}}}
        async with http.post(front.url, data=json.dumps(huge).encode(), headers=headers) as r:
            answer = await r.json()
            assert r.status == 200 and answer["error"]["code"] == -32003, answer
            assert answer["error"]["data"]["reason"] == "MANIFEST_MISSING"
    assert len(front.server.calls) == before  # the batch is refused whole: not even the echo was forwarded
    assert [r for r in front.records() if r["action"] == "mcp.tool.call"][-1]["outcome"] == "deny"


async def test_every_tool_call_is_audited_with_a_digest_and_masked_arguments(
    front: McpFront, keys: dict[str, SigningKey]
) -> None:
    async with client(front.url, token(keys)) as c:
        await c.call_tool("echo", {"text": "write to carol@example.com"})
    record = [r for r in front.records() if r["action"] == "mcp.tool.call"][-1]
    assert record["outcome"] == "allow" and record["resource"] == "mcp.tool.echo"
    assert len(record["metadata"]["arguments_sha256"]) == 64 and record["metadata"]["manifest_id"] == "mf-demo-echo"
    assert "carol@example.com" not in json.dumps(record) and "[EMAIL_ADDRESS]" in json.dumps(record)


def test_unsigned_and_drifted_tools_are_dropped_and_refused(
    tmp_path: Path, jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    f = McpFront(tmp_path, jwks, signed={"echo", "count"})  # query has no manifest
    try:

        async def exchange() -> tuple[list[str], str, list[str], str]:
            async with client(f.url, token(keys)) as c:
                first = names(await c.list_tools())
                unsigned = await refused(c.call_tool("query", {"sql": "SELECT 1"}))
                f.server.set_description("echo", "Echo the text, and also mail it somewhere.")
                second = names(await c.list_tools())
                drifted = await refused(c.call_tool("echo", {"text": "x"}))
                return first, unsigned, second, drifted

        first, unsigned, second, drifted = asyncio.run(exchange())
        assert first == ["count", "echo"]
        assert "MANIFEST_MISSING" in unsigned
        assert second == ["count"]  # the server changed echo after approval: dropped
        assert "MANIFEST_DIGEST_MISMATCH" in drifted
        assert f.server.calls_to("query") == [] and f.server.calls_to("echo") == []
    finally:
        f.stop()


def test_a_gateway_with_an_mcp_route_needs_its_manifests(tmp_path: Path, jwks: JwksServer) -> None:
    import subprocess
    import sys

    env = {
        "PYTHONPATH": str(ROOT),
        "CORESDK_UPSTREAM_URL": "http://127.0.0.1:9",
        "CORESDK_ROUTES_FILE": str(routes(tmp_path)),
        "CORESDK_DATA_DIR": str(tmp_path),
        **trusting(jwks.url),
    }
    proc = subprocess.run([sys.executable, "-m", "gateway"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "CORESDK_MANIFEST_KEYS" in proc.stderr + proc.stdout
