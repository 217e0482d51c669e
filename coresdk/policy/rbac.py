"""Built-in authorization: role hierarchy, scopes, tenant isolation, ownership. Every rule must pass; the first that
fails is the reason. Anything unexpected is a deny.

- roles: admin > operator > editor > viewer; a higher role holds every action of the lower ones;
- scopes `resource:action`: a token never does more than its scopes allow (no wildcards);
- tenant: a principal acts only in its own tenant; an explicit admin bypass (off by default) is reported so the
  caller's audit record shows it;
- ownership: write and delete on an owned resource need the owner or operator-level role.
Machine clients (client_credentials tokens: subject == client_id, no roles) are judged by scopes and tenant alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coresdk.roles import OWNED_ACTIONS, ROLE_ACTIONS, ROLE_ORDER
from coresdk.v1.common_pb2 import Principal


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    matched_rules: tuple[str, ...] = field(default_factory=tuple)


def _rank(roles: list[str]) -> int:
    return max((ROLE_ORDER.index(r) for r in roles if r in ROLE_ORDER), default=-1)


def decide(
    principal: Principal, resource: str, action: str, tenant_id: str, resource_owner: str, admin_tenant_bypass: bool
) -> Decision:
    rules: list[str] = []
    permission = f"{resource}:{action}"
    if permission not in principal.scopes:
        return Decision(False, "SCOPE_MISSING", (f"scope:{permission}",))
    rules.append(f"scope:{permission}")
    roles = list(principal.roles)
    machine = not roles and principal.client_id and principal.subject == principal.client_id
    rank = _rank(roles)
    if not machine:
        if rank < 0 or action not in ROLE_ACTIONS[ROLE_ORDER[rank]]:
            return Decision(False, "ROLE_INSUFFICIENT", (*rules, f"role:{action}"))
        rules.append(f"role:{ROLE_ORDER[rank]}")
    bypass = False
    if principal.tenant_id != tenant_id:
        if admin_tenant_bypass and rank == ROLE_ORDER.index("admin"):
            bypass = True
            rules.append("tenant:admin_bypass")
        else:
            return Decision(False, "TENANT_MISMATCH", (*rules, "tenant"))
    else:
        rules.append("tenant")
    if resource_owner and action in OWNED_ACTIONS and resource_owner != principal.subject:
        if rank < ROLE_ORDER.index("operator"):
            return Decision(False, "NOT_OWNER", (*rules, "ownership"))
        rules.append("ownership:operator")
    return Decision(True, "ADMIN_TENANT_BYPASS" if bypass else "ALLOWED", tuple(rules))
