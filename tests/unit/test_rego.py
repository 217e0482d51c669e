"""Conformance of our Rego policies (config/policies) in the pinned in-process engine and through the OPA data API,
and the fail-closed rules around them: a broken policy stops start-up, every odd answer is a deny, no answer is an
outage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from coresdk.config.sidecar import load_sidecar_config
from coresdk.errors import ConfigError, Unavailable
from coresdk.mcp.sql_guard import classify
from coresdk.policy.rego import LocalRego, RegoOutcome, RemoteOpa, interpret
from tests.support.opa import OpaServer
from tests.support.processes import ROOT

POLICY = ROOT / "config" / "policies" / "authz.rego"
DATA = ROOT / "config" / "policies" / "data.json"


def doc(
    action: str = "read", tenant: str = "t1", client: str = "app-1", amr: list[str] | None = None
) -> dict[str, Any]:
    claims: dict[str, Any] = {} if amr is None else {"amr": amr}
    return {
        "principal": {"subject": "u1", "tenant_id": tenant, "client_id": client, "roles": ["admin"], "claims": claims},
        "resource": "tasks",
        "action": action,
        "tenant_id": tenant,
        "resource_owner": "",
        "context": {},
        "builtin": {"reason": "ALLOWED", "matched_rules": []},
    }


def tool_call(tool: str, tags: list[str], sql: str | None = None, client: str = "agent-1") -> dict[str, Any]:
    """A tool call as the gateway sends it: the context goes through a protobuf Struct on the way to the sidecar
    (numbers become doubles), so the cases are built the same way."""
    context: dict[str, Any] = {"tool": tool, "arguments": {"sql": sql} if sql is not None else {}, "tags": tags}
    if sql is not None:
        context["sql"] = classify(sql)
    wire = Struct()
    wire.update(context)
    return {**doc("call", client=client), "resource": f"mcp.tool.{tool}", "context": MessageToDict(wire)}


# (input, expected outcome): the contract of config/policies/authz.rego.
CASES: list[tuple[str, dict[str, Any], RegoOutcome]] = [
    ("plain read", doc(), RegoOutcome(True, "")),
    ("write", doc("write"), RegoOutcome(True, "")),
    ("delete without mfa", doc("delete"), RegoOutcome(False, "MFA_REQUIRED")),
    ("delete with pwd only", doc("delete", amr=["pwd"]), RegoOutcome(False, "MFA_REQUIRED")),
    ("delete with mfa", doc("delete", amr=["pwd", "mfa"]), RegoOutcome(True, "")),
    ("suspended tenant reads", doc("read", tenant="t-suspended"), RegoOutcome(True, "")),
    ("suspended tenant lists", doc("list", tenant="t-suspended"), RegoOutcome(True, "")),
    ("suspended tenant writes", doc("write", tenant="t-suspended"), RegoOutcome(False, "TENANT_SUSPENDED")),
    (
        "two refusals: smallest reason",
        doc("delete", tenant="t-suspended"),
        RegoOutcome(False, "MFA_REQUIRED"),
    ),
    ("read-only client reads", doc("read", client="reporting-client"), RegoOutcome(True, "")),
    ("read-only client writes", doc("write", client="reporting-client"), RegoOutcome(False, "CLIENT_READ_ONLY")),
    ("claims missing entirely", {**doc("delete"), "principal": {"client_id": "x"}}, RegoOutcome(False, "MFA_REQUIRED")),
    ("plain tool call", tool_call("echo", []), RegoOutcome(True, "")),
    ("sql tool: one read-only statement", tool_call("query", ["sql"], "SELECT * FROM orders"), RegoOutcome(True, "")),
    (
        "sql tool: a write",
        tool_call("query", ["sql"], "DELETE FROM orders"),
        RegoOutcome(False, "SQL_NOT_READ_ONLY"),
    ),
    ("sql tool: DROP TABLE", tool_call("query", ["sql"], "DROP TABLE orders"), RegoOutcome(False, "SQL_NOT_READ_ONLY")),
    (
        "sql tool: a data-modifying CTE",
        tool_call("query", ["sql"], "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"),
        RegoOutcome(False, "SQL_NOT_READ_ONLY"),
    ),
    ("sql tool: pg_sleep", tool_call("query", ["sql"], "SELECT pg_sleep(60)"), RegoOutcome(False, "SQL_NOT_READ_ONLY")),
    ("sql tool without a classification", tool_call("query", ["sql"]), RegoOutcome(False, "SQL_NOT_READ_ONLY")),
    (
        "sql tool: statements != 1",
        {
            **tool_call("query", ["sql"], "SELECT 1"),
            "context": {"tags": ["sql"], "sql": {"read_only": True, "statements": 2}},
        },
        RegoOutcome(False, "SQL_NOT_READ_ONLY"),
    ),
    (
        "sql tool: read_only a string",
        {
            **tool_call("query", ["sql"], "SELECT 1"),
            "context": {"tags": ["sql"], "sql": {"read_only": "true", "statements": 1}},
        },
        RegoOutcome(False, "SQL_NOT_READ_ONLY"),
    ),
    (
        "sql tool: a denied table",
        tool_call("query", ["sql"], "SELECT rolpassword FROM pg_catalog.pg_authid"),
        RegoOutcome(False, "SQL_TABLE_DENIED"),
    ),
    ("untagged tool: sql not judged", tool_call("notes", [], "DROP TABLE x"), RegoOutcome(True, "")),
    (
        "read-only client calls a tool",
        tool_call("echo", [], client="reporting-client"),
        RegoOutcome(False, "CLIENT_READ_ONLY"),
    ),
]


def decide(engine: LocalRego, document: dict[str, Any]) -> RegoOutcome:
    """Evaluate from a plain (synchronous) test: a regorus engine must be dropped on the thread that made it, and
    async test frames can end up in reference cycles that another thread's garbage collection frees."""
    return asyncio.run(engine.evaluate(document))


@pytest.fixture(scope="module")
def local() -> LocalRego:
    return LocalRego((POLICY,), "coresdk/authz", DATA)


@pytest.fixture(scope="module")
def opa() -> Any:
    server = OpaServer([POLICY], DATA)
    yield server
    server.stop()


@pytest.mark.parametrize(("name", "document", "expected"), CASES, ids=[c[0] for c in CASES])
def test_policy_conformance_in_process(
    local: LocalRego, name: str, document: dict[str, Any], expected: RegoOutcome
) -> None:
    assert decide(local, document) == expected


@pytest.mark.parametrize(("name", "document", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_policy_conformance_through_the_opa_data_api(
    opa: OpaServer, name: str, document: dict[str, Any], expected: RegoOutcome
) -> None:
    engine = RemoteOpa(opa.url, "coresdk/authz", 2.0)
    try:
        assert await engine.evaluate(document) == expected
    finally:
        await engine.close()


def test_a_broken_policy_is_a_start_up_error_naming_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.rego"
    bad.write_text("package coresdk.authz\nimport rego.v1\nallow if {\n")
    with pytest.raises(ConfigError) as err:
        LocalRego((bad,), "coresdk/authz")
    assert err.value.variable == "CORESDK_POLICY_FILE"
    assert "bad.rego" in str(err.value) and "Stack backtrace" not in str(err.value)


def test_a_query_no_policy_defines_is_a_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        LocalRego((POLICY,), "other/authz")
    assert err.value.variable == "CORESDK_POLICY_QUERY"


def test_bad_policy_data_is_a_start_up_error(tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text("[1, 2")
    with pytest.raises(ConfigError) as err:
        LocalRego((POLICY,), "coresdk/authz", data)
    assert err.value.variable == "CORESDK_POLICY_DATA"


def test_an_evaluation_error_is_a_deny(tmp_path: Path) -> None:
    conflict = tmp_path / "conflict.rego"
    # Two different values for one complete rule: a run-time conflict error in Rego.
    conflict.write_text("package coresdk.authz\nimport rego.v1\nallow := true if input.a\nallow := false if input.b\n")
    engine = LocalRego((conflict,), "coresdk/authz")
    assert decide(engine, {"a": True, "b": True}) == RegoOutcome(False, "POLICY_ERROR")
    assert decide(engine, {"a": True}) == RegoOutcome(True, "")


def test_undefined_or_odd_documents_are_denies(tmp_path: Path) -> None:
    p = tmp_path / "odd.rego"
    p.write_text('package coresdk.authz\nimport rego.v1\nallow := "yes" if input.s\nallow := 1 if input.n\n')
    engine = LocalRego((p,), "coresdk/authz")
    assert decide(engine, {"s": True}) == RegoOutcome(False, "POLICY_UNDEFINED")
    assert decide(engine, {"n": True}) == RegoOutcome(False, "POLICY_UNDEFINED")
    assert decide(engine, {}) == RegoOutcome(False, "POLICY_UNDEFINED")  # allow undefined
    assert interpret(None) == RegoOutcome(False, "POLICY_UNDEFINED")
    assert interpret([True]) == RegoOutcome(False, "POLICY_UNDEFINED")
    assert interpret({"allow": False, "reason": "lower case <script>"}) == RegoOutcome(False, "POLICY_DENIED")
    assert interpret({"allow": False, "reason": "CUSTOM_NO"}) == RegoOutcome(False, "CUSTOM_NO")


async def test_opa_failing_or_slow_or_unreachable_is_an_outage(opa: OpaServer) -> None:
    engine = RemoteOpa(opa.url, "coresdk/authz", 0.3)
    try:
        opa.mode = "error"
        with pytest.raises(Unavailable):
            await engine.evaluate(doc())
        opa.mode = "hang"
        with pytest.raises(Unavailable):
            await engine.evaluate(doc())
    finally:
        opa.mode = "ok"
        await engine.close()
    from tests.support.ports import free_port

    gone = RemoteOpa(f"http://127.0.0.1:{free_port()}", "coresdk/authz", 0.3)
    try:
        with pytest.raises(Unavailable):
            await gone.evaluate(doc())
    finally:
        await gone.close()


async def test_opa_undefined_document_is_a_deny(opa: OpaServer) -> None:
    engine = RemoteOpa(opa.url, "coresdk/nothing_here", 2.0)
    try:
        assert await engine.evaluate(doc()) == RegoOutcome(False, "POLICY_UNDEFINED")
    finally:
        await engine.close()


BASE_ENV = {
    "CORESDK_ENV": "production",
    "CORESDK_JWKS_URI": "https://idp.example.com/jwks",
    "CORESDK_EXPECTED_ISSUER": "https://idp.example.com",
    "CORESDK_EXPECTED_AUDIENCE": "api",
}


def test_policy_configuration_is_validated() -> None:
    assert load_sidecar_config(BASE_ENV).policy is None
    local = load_sidecar_config({**BASE_ENV, "CORESDK_POLICY_FILE": str(POLICY.parent)}).policy
    assert local is not None and local.files == (POLICY,) and local.query == "coresdk/authz"
    remote = load_sidecar_config({**BASE_ENV, "OPA_URL": "http://127.0.0.1:8181/"}).policy
    assert remote is not None and remote.opa_url == "http://127.0.0.1:8181"
    for env, variable in [
        ({"CORESDK_POLICY_FILE": str(POLICY), "OPA_URL": "http://127.0.0.1:8181"}, "OPA_URL"),
        ({"OPA_URL": "http://opa.example.com:8181"}, "OPA_URL"),  # plain http off the machine
        ({"CORESDK_POLICY_FILE": "/nonexistent/policies"}, "CORESDK_POLICY_FILE"),
        ({"CORESDK_POLICY_FILE": str(POLICY), "CORESDK_POLICY_QUERY": "data.x;"}, "CORESDK_POLICY_QUERY"),
        ({"CORESDK_AUDIT_DECISIONS": "none"}, "CORESDK_AUDIT_DECISIONS"),
    ]:
        with pytest.raises(ConfigError) as err:
            load_sidecar_config({**BASE_ENV, **env})
        assert err.value.variable == variable, env
