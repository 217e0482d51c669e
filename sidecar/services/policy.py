"""gRPC edge of authorization: PolicyService.Authorize. Invalid requests are errors; decisions are answers."""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc

from coresdk.errors import CoreSDKError, InvalidArgument
from coresdk.v1 import common_pb2, policy_pb2, policy_pb2_grpc
from sidecar.auth.validator import TokenValidator
from sidecar.grpc_errors import abort
from sidecar.metrics import SidecarMetrics
from sidecar.policy.rbac import decide

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


class PolicyService(policy_pb2_grpc.PolicyServiceServicer):
    def __init__(self, validator: TokenValidator, metrics: SidecarMetrics, admin_tenant_bypass: bool = False) -> None:
        self._validator = validator
        self._metrics = metrics
        self._bypass = admin_tenant_bypass

    async def Authorize(  # noqa: N802
        self, request: policy_pb2.AuthorizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> policy_pb2.AuthorizeResponse:
        try:
            if not _NAME.fullmatch(request.resource) or not _NAME.fullmatch(request.action):
                raise InvalidArgument("INVALID_PERMISSION", "resource and action must be lower-case names")
            if not request.tenant_id:
                raise InvalidArgument("TENANT_REQUIRED", "tenant_id is required; there is no default tenant")
            subject = request.WhichOneof("subject")
            if subject == "token":
                principal = await self._validator.authenticate(request.token)
            elif subject == "principal":
                principal = request.principal
            else:
                raise InvalidArgument("SUBJECT_REQUIRED", "give a token or a principal")
            decision = decide(
                principal, request.resource, request.action, request.tenant_id, request.resource_owner, self._bypass
            )
        except CoreSDKError as err:
            self._metrics.requests.labels("Authorize", err.reason).inc()
            await abort(context, err)
            raise
        self._metrics.requests.labels("Authorize", decision.reason).inc()
        return policy_pb2.AuthorizeResponse(
            allowed=decision.allowed,
            reason=decision.reason,
            decision_id=str(uuid.uuid4()),
            matched_rules=list(decision.matched_rules),
            principal=principal if isinstance(principal, common_pb2.Principal) else None,
        )
