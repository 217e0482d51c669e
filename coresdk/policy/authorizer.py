"""Authorization as one function of the engine: who (a token or a verified principal) may do what, in which tenant.

Invalid requests are errors (InvalidArgument); decisions are answers. Built-in rules decide first; custom Rego rules
(when configured) may only refuse more. Decisions are appended to the audit chain according to
CORESDK_AUDIT_DECISIONS: an admin tenant bypass always, denials by default, every decision with `all`. A decision that
must be audited and cannot be is not given: the caller gets Unavailable. Both faces use this: the sidecar's
PolicyService.Authorize and the gateway's in-process decision.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from coresdk import reasons
from coresdk.audit.log import AuditLog
from coresdk.audit.record import clip, validate_fields
from coresdk.auth.validator import TokenValidator
from coresdk.errors import InvalidArgument
from coresdk.policy.rbac import Decision, decide
from coresdk.policy.rego import RegoEvaluator
from coresdk.v1 import common_pb2, policy_pb2

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
AUDIT_ACTION = "authz.decision"


def rego_input(
    principal: common_pb2.Principal, request: policy_pb2.AuthorizeRequest, decision: Decision
) -> dict[str, Any]:
    """The document custom rules see: the verified identity, the request, and what the built-in rules decided."""
    return {
        "principal": {
            "subject": principal.subject,
            "issuer": principal.issuer,
            "tenant_id": principal.tenant_id,
            "client_id": principal.client_id,
            "roles": list(principal.roles),
            "scopes": list(principal.scopes),
            "token_id": principal.token_id,
            "claims": MessageToDict(principal.claims) if principal.HasField("claims") else {},
        },
        "resource": request.resource,
        "action": request.action,
        "tenant_id": request.tenant_id,
        "resource_owner": request.resource_owner,
        "context": MessageToDict(request.context) if request.HasField("context") else {},
        "builtin": {"reason": decision.reason, "matched_rules": list(decision.matched_rules)},
    }


@dataclass(frozen=True)
class Authorized:
    decision: Decision
    principal: common_pb2.Principal
    decision_id: str


class Authorizer:
    def __init__(
        self,
        validator: TokenValidator,
        admin_tenant_bypass: bool = False,
        rego: RegoEvaluator | None = None,
        audit: AuditLog | None = None,
        audit_chain: str = "sidecar",
        audit_decisions: str = "deny",
    ) -> None:
        self._validator = validator
        self._bypass = admin_tenant_bypass
        self._rego = rego
        self._audit = audit
        self._chain = audit_chain
        self._audit_decisions = audit_decisions

    async def _decide(self, principal: common_pb2.Principal, request: policy_pb2.AuthorizeRequest) -> Decision:
        decision = decide(
            principal, request.resource, request.action, request.tenant_id, request.resource_owner, self._bypass
        )
        if not decision.allowed or self._rego is None:
            return decision
        outcome = await self._rego.evaluate(rego_input(principal, request, decision))
        if not outcome.allowed:
            return Decision(False, outcome.reason, (*decision.matched_rules, self._rego.name))
        return Decision(decision.allowed, decision.reason, (*decision.matched_rules, self._rego.name))

    def _must_audit(self, decision: Decision) -> bool:
        if decision.reason == "ADMIN_TENANT_BYPASS":
            return True
        return self._audit_decisions == "all" or (self._audit_decisions == "deny" and not decision.allowed)

    async def _record(
        self,
        principal: common_pb2.Principal,
        request: policy_pb2.AuthorizeRequest,
        decision: Decision,
        decision_id: str,
    ) -> None:
        if self._audit is None:
            return
        body = validate_fields(
            {
                "actor": clip(principal.subject) or "unknown",
                "action": AUDIT_ACTION,
                "resource": f"{request.resource}:{request.action}",
                "outcome": "allow" if decision.allowed else "deny",
                "tenant_id": clip(request.tenant_id),
                "reason": decision.reason,
                "metadata": {
                    "decision_id": decision_id,
                    "request_id": clip(request.request_id),
                    "principal_tenant_id": clip(principal.tenant_id),
                    "client_id": clip(principal.client_id),
                    "matched_rules": list(decision.matched_rules),
                },
            }
        )
        await self._audit.append([(self._chain, body)])

    async def authorize(self, request: policy_pb2.AuthorizeRequest) -> Authorized:
        """Raises CoreSDKError (InvalidArgument, Unauthenticated, Unavailable); returns the decision otherwise."""
        decision_id = str(uuid.uuid4())
        if not _NAME.fullmatch(request.resource) or not _NAME.fullmatch(request.action):
            raise InvalidArgument(reasons.INVALID_PERMISSION, "resource and action must be lower-case names")
        subject = request.WhichOneof("subject")
        if request.tenant_from_token and subject != "token":
            raise InvalidArgument(reasons.SUBJECT_REQUIRED, "tenant_from_token needs a token")
        if not request.tenant_id and not request.tenant_from_token:
            raise InvalidArgument(reasons.TENANT_REQUIRED, "tenant_id is required; there is no default tenant")
        if subject == "token":
            principal = await self._validator.authenticate(request.token)
        elif subject == "principal":
            principal = request.principal
        else:
            raise InvalidArgument(reasons.SUBJECT_REQUIRED, "give a token or a principal")
        if request.tenant_from_token:
            if not principal.tenant_id:
                raise InvalidArgument(reasons.TENANT_REQUIRED, "the token names no tenant; there is no default tenant")
            request.tenant_id = principal.tenant_id
        decision = await self._decide(principal, request)
        if self._must_audit(decision):
            await self._record(principal, request, decision, decision_id)
        return Authorized(decision, principal, decision_id)
