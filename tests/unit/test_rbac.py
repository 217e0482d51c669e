"""The built-in authorization rules, each role/scope/tenant/ownership combination."""

from __future__ import annotations

import pytest

from coresdk.policy.rbac import decide
from coresdk.v1.common_pb2 import Principal


def who(roles: list[str], scopes: list[str], tenant: str = "t1", sub: str = "u1", client: str = "c1") -> Principal:
    return Principal(subject=sub, roles=roles, scopes=scopes, tenant_id=tenant, client_id=client)


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        ("viewer", "read", True),
        ("viewer", "write", False),
        ("viewer", "delete", False),
        ("editor", "read", True),
        ("editor", "write", True),
        ("editor", "delete", False),
        ("operator", "delete", True),
        ("operator", "admin", False),
        ("admin", "admin", True),
    ],
)
def test_role_hierarchy(role: str, action: str, allowed: bool) -> None:
    d = decide(who([role], [f"tasks:{action}"]), "tasks", action, "t1", "", False)
    assert d.allowed is allowed
    if not allowed:
        assert d.reason == "ROLE_INSUFFICIENT"


def test_scopes_bound_every_role() -> None:
    assert decide(who(["admin"], ["tasks:read"]), "tasks", "write", "t1", "", False).reason == "SCOPE_MISSING"
    assert decide(who(["admin"], ["tasks:*"]), "tasks", "read", "t1", "", False).reason == "SCOPE_MISSING"


def test_tenant_isolation_and_explicit_admin_bypass() -> None:
    admin = who(["admin"], ["tasks:read"])
    assert decide(admin, "tasks", "read", "t2", "", False).reason == "TENANT_MISMATCH"
    bypass = decide(admin, "tasks", "read", "t2", "", True)
    assert (bypass.allowed, bypass.reason) == (True, "ADMIN_TENANT_BYPASS")
    assert "tenant:admin_bypass" in bypass.matched_rules
    assert decide(who(["operator"], ["tasks:read"]), "tasks", "read", "t2", "", True).reason == "TENANT_MISMATCH"


def test_ownership() -> None:
    editor = who(["editor"], ["tasks:write", "tasks:read"])
    assert decide(editor, "tasks", "write", "t1", "u1", False).allowed
    assert decide(editor, "tasks", "write", "t1", "someone-else", False).reason == "NOT_OWNER"
    assert decide(editor, "tasks", "read", "t1", "someone-else", False).allowed
    assert decide(who(["operator"], ["tasks:delete"]), "tasks", "delete", "t1", "someone-else", False).allowed


def test_machine_clients_use_scopes_and_tenant() -> None:
    svc = who([], ["reports:read"], sub="cli_1", client="cli_1")
    assert decide(svc, "reports", "read", "t1", "", False).allowed
    assert decide(svc, "reports", "write", "t1", "", False).reason == "SCOPE_MISSING"
    assert decide(svc, "reports", "read", "t9", "", False).reason == "TENANT_MISMATCH"
    human_without_roles = who([], ["reports:read"], sub="u1", client="cli_1")
    assert decide(human_without_roles, "reports", "read", "t1", "", False).reason == "ROLE_INSUFFICIENT"
