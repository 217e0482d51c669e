"""Authorization behind the gateway with real processes: Rego rules in-process and through the OPA data API, the
role × route matrix, one audit record per request, audited admin bypass, and quotas in a shared PostgreSQL store
that fail closed when the store disappears."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.journal import Journal
from coresdk.v1 import common_pb2, policy_pb2, policy_pb2_grpc
from tests.support.gateway import GatewayProcess, Upstream
from tests.support.jwks_server import JwksServer
from tests.support.opa import OpaServer
from tests.support.ports import free_port
from tests.support.postgres import PostgresCluster
from tests.support.processes import ROOT, SidecarProcess, trusting
from tests.support.tokens import ISSUER, SigningKey, claims

POLICIES = ROOT / "config" / "policies"
GATEWAY_CHAIN = "gw-test"


@contextlib.contextmanager
def running(
    jwks: JwksServer, upstream: Upstream, sidecar_extra: dict[str, str], **gateway: Any
) -> Iterator[tuple[SidecarProcess, GatewayProcess]]:
    """A sidecar and a gateway in front of `upstream`, both stopped however the test ends."""
    sidecar = SidecarProcess(trusting(jwks.url, **sidecar_extra))
    try:
        gw = GatewayProcess(upstream, sidecar, **gateway)
        try:
            yield sidecar, gw
        finally:
            gw.stop()
    finally:
        sidecar.stop()


def bearer(keys: dict[str, SigningKey], **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys['rs'].sign(claims(**kw))}"}


def journal(proc: SidecarProcess | GatewayProcess, chain: str) -> list[dict[str, Any]]:
    """The verified records of one chain in a sidecar's journal, or in a gateway's own."""
    directory = "gateway-audit" if isinstance(proc, GatewayProcess) else "audit"
    entries = Journal(Path(proc.env["CORESDK_DATA_DIR"]) / directory, 1 << 30).read_all()
    stored = [StoredRecord(e.chain_id, e.seq, e.canonical, e.record_hash) for e in entries if e.chain_id == chain]
    assert verify_chain(chain, stored).failure is None
    return [json.loads(e.canonical) for e in entries if e.chain_id == chain]


@pytest.fixture(scope="module")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture(scope="module")
def rego_sidecar(jwks: JwksServer) -> Iterator[SidecarProcess]:
    proc = SidecarProcess(
        trusting(
            jwks.url,
            CORESDK_POLICY_FILE=str(POLICIES),
            CORESDK_POLICY_DATA=str(POLICIES / "data.json"),
            CORESDK_AUDIT_DECISIONS="all",
        )
    )
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="module")
def rego_gateway(upstream: Upstream, rego_sidecar: SidecarProcess) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(upstream, rego_sidecar, env={"CORESDK_GATEWAY_AUDIT_CHAIN": GATEWAY_CHAIN})
    yield gw
    gw.stop()


def test_rego_rules_are_enforced_through_the_gateway(
    rego_gateway: GatewayProcess, upstream: Upstream, keys: dict[str, SigningKey]
) -> None:
    operator = {"roles": ["operator"], "scope": "tasks:read tasks:delete tasks:create"}
    before = len(upstream.seen)
    no_mfa = requests.delete(f"{rego_gateway.url}/v1/agent/tasks/7", headers=bearer(keys, **operator), timeout=10)
    assert (no_mfa.status_code, no_mfa.json()["error_description"]) == (403, "not allowed (MFA_REQUIRED)")
    assert len(upstream.seen) == before
    mfa = requests.delete(
        f"{rego_gateway.url}/v1/agent/tasks/7", headers=bearer(keys, amr=["pwd", "mfa"], **operator), timeout=10
    )
    assert mfa.status_code == 200, mfa.text
    suspended = {**operator, "tenant_id": "t-suspended"}
    read = requests.get(f"{rego_gateway.url}/v1/agent/tasks", headers=bearer(keys, **suspended), timeout=10)
    assert read.status_code == 200
    write = requests.post(f"{rego_gateway.url}/v1/agent/tasks", headers=bearer(keys, **suspended), json={}, timeout=10)
    assert (write.status_code, write.json()["error_description"]) == (403, "not allowed (TENANT_SUSPENDED)")
    # Rego only restricts: a token without the scope is refused by the built-in rules before Rego is asked.
    no_scope = requests.delete(
        f"{rego_gateway.url}/v1/agent/tasks/7",
        headers=bearer(keys, amr=["mfa"], roles=["operator"], scope="tasks:read"),
        timeout=10,
    )
    assert no_scope.json()["error_description"] == "not allowed (SCOPE_MISSING)"


ROUTES = json.loads((ROOT / "config" / "routes.json").read_text())["routes"]
ROLE_ACTIONS = {
    "viewer": {"read"},
    "editor": {"read", "create", "write"},
    "operator": {"read", "create", "write", "delete"},
    "admin": {"read", "create", "write", "delete"},
}


@pytest.mark.parametrize("role", ["viewer", "editor", "operator", "admin"])
def test_each_role_against_the_route_map(rego_gateway: GatewayProcess, keys: dict[str, SigningKey], role: str) -> None:
    every_scope = " ".join(sorted({r["permission"] for r in ROUTES}))
    for route in ROUTES:
        action = route["permission"].split(":")[1]
        path = route["path"].replace("{id}", "42")
        headers = bearer(keys, roles=[role], scope=every_scope, amr=["mfa"])
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"} if route.get("mcp") else {}  # MCP routes take JSON-RPC
        resp = requests.request(route["method"], f"{rego_gateway.url}{path}", headers=headers, json=body, timeout=10)
        expected = 200 if action in ROLE_ACTIONS[role] else 403
        assert resp.status_code == expected, (role, route, resp.text)
        # the same role without the route's scope is always refused
        others = " ".join(sorted({r["permission"] for r in ROUTES} - {route["permission"]}))
        headers = bearer(keys, roles=[role], scope=others, amr=["mfa"])
        resp = requests.request(route["method"], f"{rego_gateway.url}{path}", headers=headers, json={}, timeout=10)
        assert (resp.status_code, resp.json()["error_description"]) == (403, "not allowed (SCOPE_MISSING)")
    cross = requests.get(
        f"{rego_gateway.url}/v1/orders", headers=bearer(keys, roles=[role], scope=every_scope), timeout=10
    )
    assert cross.status_code == 200  # the tenant is the token's own: X-Tenant-ID can never point elsewhere


def test_every_request_leaves_one_audit_record_with_pii_masked(
    rego_gateway: GatewayProcess, rego_sidecar: SidecarProcess, keys: dict[str, SigningKey]
) -> None:
    def request_records() -> list[dict[str, Any]]:  # the chain also holds the engine's decisions (audited: all)
        return [r for r in journal(rego_gateway, GATEWAY_CHAIN) if r["action"] == "http.request"]

    base = len(request_records())
    ok = requests.get(f"{rego_gateway.url}/v1/orders?email=carol%40example.com", headers=bearer(keys), timeout=10)
    no_token = requests.get(f"{rego_gateway.url}/v1/orders", timeout=10)
    forbidden = requests.delete(f"{rego_gateway.url}/v1/agent/tasks/1", headers=bearer(keys), timeout=10)
    unlisted = requests.get(f"{rego_gateway.url}/v1/secret-admin", headers=bearer(keys), timeout=10)
    too_big = requests.post(f"{rego_gateway.url}/v1/orders", headers=bearer(keys), data=b"x" * 70000, timeout=10)
    assert [r.status_code for r in (ok, no_token, forbidden, unlisted, too_big)] == [200, 401, 403, 404, 413]
    records = request_records()[base:]
    assert [(r["outcome"], r["metadata"]["status"], r["actor"]) for r in records] == [
        ("allow", 200, "user-42"),
        ("deny", 401, "anonymous"),
        ("deny", 403, "user-42"),
        ("deny", 404, "user-42"),
        ("deny", 413, "anonymous"),  # refused before anything else is looked at
    ]
    assert [r["resource"] for r in records] == [
        "GET /v1/orders",
        "GET (unmatched)",
        "DELETE /v1/agent/tasks/{id}",
        "GET (unmatched)",
        "POST (unmatched)",
    ]
    assert [r["reason"] for r in records] == [
        "ALLOWED",
        "TOKEN_MISSING",
        "SCOPE_MISSING",
        "ROUTE_NOT_FOUND",
        "BODY_TOO_LARGE",
    ]
    assert all(r["tenant_id"] == "tenant-a" for r in records if r["actor"] == "user-42")
    assert all(r["action"] == "http.request" and r["metadata"]["request_id"] for r in records)
    raw = json.dumps(records)
    assert "carol@example.com" not in raw and "carol%40example.com" not in raw
    assert "[EMAIL_ADDRESS]" in records[0]["metadata"]["target"]
    # The engine was told to audit every decision too (CORESDK_AUDIT_DECISIONS=all): the gateway's engine decided.
    decisions = [r for r in journal(rego_gateway, GATEWAY_CHAIN) if r["action"] == "authz.decision"]
    assert {"allow", "deny"} <= {r["outcome"] for r in decisions}


def test_a_broken_policy_stops_sidecar_start_up(jwks: JwksServer, tmp_path: Path) -> None:
    bad = tmp_path / "authz.rego"
    bad.write_text("package coresdk.authz\nimport rego.v1\n\nallow if {\n  input.x ==\n")
    proc = SidecarProcess(trusting(jwks.url, CORESDK_POLICY_FILE=str(bad)), wait_ready=False)
    try:
        assert proc.proc.wait(30) == 2
        out = proc.output()
        assert "CORESDK_POLICY_FILE" in out and "authz.rego:" in out and "Traceback" not in out
    finally:
        proc.stop()


def test_a_rego_evaluation_error_denies(
    jwks: JwksServer, upstream: Upstream, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    policy = tmp_path / "conflict.rego"
    policy.write_text(
        'package coresdk.authz\nimport rego.v1\nallow := true if input.action == "read"\n'
        'allow := false if input.principal.subject == "user-42"\n'
    )
    with running(jwks, upstream, {"CORESDK_POLICY_FILE": str(policy)}) as (sidecar, gw):
        before = len(upstream.seen)
        resp = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=10)
        assert (resp.status_code, resp.json()["error_description"]) == (403, "not allowed (POLICY_ERROR)")
        assert len(upstream.seen) == before
        other = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys, sub="user-7"), timeout=10)
        assert other.status_code == 200


def test_remote_opa_decides_and_its_outage_is_503(
    jwks: JwksServer, upstream: Upstream, keys: dict[str, SigningKey]
) -> None:
    opa = OpaServer([POLICIES / "authz.rego"], POLICIES / "data.json")
    operator = {"roles": ["operator"], "scope": "tasks:delete tasks:read"}
    with running(jwks, upstream, {"OPA_URL": opa.url, "CORESDK_POLICY_TIMEOUT": "0.5"}) as (sidecar, gw):
        denied = requests.delete(f"{gw.url}/v1/agent/tasks/7", headers=bearer(keys, **operator), timeout=10)
        assert denied.json()["error_description"] == "not allowed (MFA_REQUIRED)"
        allowed = requests.get(f"{gw.url}/v1/agent/tasks", headers=bearer(keys, **operator), timeout=10)
        assert allowed.status_code == 200 and opa.queries == 2
        before = len(upstream.seen)
        for mode in ("error", "hang"):
            opa.mode = mode
            resp = requests.get(f"{gw.url}/v1/agent/tasks", headers=bearer(keys, **operator), timeout=10)
            assert (resp.status_code, resp.json()["error"]) == (503, "temporarily_unavailable"), mode
        opa.mode = "ok"
        opa.stop()
        gone = requests.get(f"{gw.url}/v1/agent/tasks", headers=bearer(keys, **operator), timeout=10)
        assert gone.status_code == 503
        assert len(upstream.seen) == before


async def test_admin_tenant_bypass_is_explicit_and_audited(jwks: JwksServer, tmp_path: Path) -> None:
    admin = common_pb2.Principal(
        subject="root-1", roles=["admin"], scopes=["orders:read"], tenant_id="tenant-ops", client_id="ops"
    )
    request = policy_pb2.AuthorizeRequest(principal=admin, resource="orders", action="read", tenant_id="tenant-a")
    off = SidecarProcess(trusting(jwks.url))
    on = SidecarProcess(trusting(jwks.url, CORESDK_ADMIN_TENANT_BYPASS="true"))
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    broken_audit = SidecarProcess(
        trusting(jwks.url, CORESDK_ADMIN_TENANT_BYPASS="true", CORESDK_AUDIT_DIR=str(blocked)), wait_ready=False
    )
    try:
        async with grpc.aio.insecure_channel(off.target) as ch:
            d = await policy_pb2_grpc.PolicyServiceStub(ch).Authorize(request)
            assert (d.allowed, d.reason) == (False, "TENANT_MISMATCH")
        async with grpc.aio.insecure_channel(on.target) as ch:
            d = await policy_pb2_grpc.PolicyServiceStub(ch).Authorize(request)
            assert (d.allowed, d.reason) == (True, "ADMIN_TENANT_BYPASS")
        records = [r for r in journal(on, "test-chain") if r["reason"] == "ADMIN_TENANT_BYPASS"]
        assert len(records) == 1
        assert (records[0]["actor"], records[0]["tenant_id"], records[0]["metadata"]["decision_id"]) == (
            "root-1",
            "tenant-a",
            d.decision_id,
        )
        assert records[0]["metadata"]["principal_tenant_id"] == "tenant-ops"
        checks = broken_audit.readiness_checks(until=ISSUER)
        assert checks == {ISSUER: True, "audit": False}  # keys loaded, journal unusable: not ready
        async with grpc.aio.insecure_channel(broken_audit.target) as ch:
            stub = policy_pb2_grpc.PolicyServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Authorize(request)  # a bypass that cannot be audited is not granted
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            own = policy_pb2.AuthorizeRequest(principal=admin, resource="orders", action="read", tenant_id="tenant-ops")
            assert (await stub.Authorize(own)).allowed  # an ordinary allow is not audited by default
    finally:
        for p in (off, on, broken_audit):
            p.stop()


def test_quotas_are_shared_across_replicas_and_fail_closed_when_the_store_is_gone(
    postgres: PostgresCluster, upstream: Upstream, keys: dict[str, SigningKey], tmp_path: Path, jwks: JwksServer
) -> None:
    if postgres.external:
        pytest.skip("needs the private cluster to drop a database under the gateway")
    routes = json.loads((ROOT / "config" / "routes.json").read_text())
    routes.pop("default_plan", None)  # only the tenants listed have a plan
    routes.update({"plans": {"tiny": {"requests_per_minute": 6, "burst": 2}}, "tenants": {"tenant-a": "tiny"}})
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(routes))
    dsn = postgres.new_database()
    sidecar = SidecarProcess(trusting(jwks.url))
    env = {"CORESDK_QUOTA_DATABASE_URL": dsn}
    one = GatewayProcess(upstream, sidecar, routes_file=path, env=env)
    two = GatewayProcess(upstream, sidecar, routes_file=path, env=env)
    try:
        codes = [
            requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=10).status_code for gw in (one, two, one)
        ]
        assert codes == [200, 200, 429]  # one budget for the tenant, whichever replica answers
        limited = requests.get(f"{two.url}/v1/orders", headers=bearer(keys), timeout=10)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        postgres.drop_database(dsn)
        before = len(upstream.seen)
        for gw in (one, two):
            resp = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys, tenant_id="tenant-a"), timeout=15)
            assert (resp.status_code, resp.json()["error"]) == (503, "temporarily_unavailable")
        assert len(upstream.seen) == before
        assert "QUOTA_STORE_UNAVAILABLE" in one.log_path.read_text()
    finally:
        one.stop()
        two.stop()
        sidecar.stop()


def test_a_gateway_with_an_unreachable_quota_store_starts_and_refuses(
    upstream: Upstream, keys: dict[str, SigningKey], tmp_path: Path, jwks: JwksServer
) -> None:
    routes = json.loads((ROOT / "config" / "routes.json").read_text())
    routes.update({"plans": {"p": {"requests_per_minute": 600, "burst": 10}}, "default_plan": "p"})
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(routes))
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with running(jwks, upstream, {}, routes_file=path, env={"CORESDK_QUOTA_DATABASE_URL": dsn}) as (sidecar, gw):
        resp = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=15)
        assert resp.status_code == 503


def test_keys_gone_past_the_stale_window_is_503_and_nothing_is_forwarded(
    upstream: Upstream, keys: dict[str, SigningKey]
) -> None:
    """The gateway decides in process: when the issuer's keys cannot be had (IdP down past CORESDK_JWKS_MAX_STALE),
    every request — a cached token's too — is 503 and nothing reaches the upstream; the gateway recovers by itself."""
    idp = JwksServer(max_age=1)
    idp.keys = [keys["rs"].jwk()]
    short = {
        "CORESDK_JWKS_CACHE_MIN": "1",
        "CORESDK_JWKS_CACHE_MAX": "1",
        "CORESDK_JWKS_MAX_STALE": "0",
        "CORESDK_JWKS_RETRY_MAX": "1",
    }
    gw = GatewayProcess(upstream, trusting(idp.url, **short))
    try:
        assert requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=10).status_code == 200
        idp.down()
        before = len(upstream.seen)
        deadline = time.monotonic() + 20
        resp = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=15)
        while resp.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            before = len(upstream.seen)
            resp = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=15)
        for method in ("GET", "POST"):
            resp = requests.request(method, f"{gw.url}/v1/orders", headers=bearer(keys), json={}, timeout=15)
            assert (resp.status_code, resp.json()["error"]) == (503, "temporarily_unavailable"), resp.text
            assert resp.headers["Retry-After"] == "5"
        assert len(upstream.seen) == before
        idp.up()  # back: the gateway recovers without a restart
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline and status != 200:
            status = requests.get(f"{gw.url}/v1/orders", headers=bearer(keys), timeout=10).status_code
            time.sleep(0.2)
        assert status == 200
    finally:
        gw.stop()
        idp.close()


def test_hostile_claims_cannot_break_the_audit_batch(
    rego_gateway: GatewayProcess, rego_sidecar: SidecarProcess, keys: dict[str, SigningKey]
) -> None:
    """A subject far longer than an audit field may be is cut, not refused: the request and its neighbours go on."""
    long_sub = "u" * 5000
    resp = requests.get(f"{rego_gateway.url}/v1/orders", headers=bearer(keys, sub=long_sub), timeout=10)
    assert resp.status_code == 200, resp.text
    last = [r for r in journal(rego_gateway, GATEWAY_CHAIN) if r["action"] == "http.request"][-1]
    assert last["actor"].startswith("uuu") and len(last["actor"]) == 256 and last["actor"].endswith("…")
