"""gRPC edge of authorization: PolicyService.Authorize over the engine's Authorizer (coresdk.policy.authorizer).

Invalid requests are errors mapped to gRPC statuses once here; decisions are answers.
"""

from __future__ import annotations

from typing import Any

import grpc

from coresdk.errors import CoreSDKError
from coresdk.metrics import EngineMetrics
from coresdk.policy.authorizer import Authorizer
from coresdk.v1 import common_pb2, policy_pb2, policy_pb2_grpc
from sidecar.grpc_errors import abort


class PolicyService(policy_pb2_grpc.PolicyServiceServicer):
    def __init__(self, authorizer: Authorizer, metrics: EngineMetrics) -> None:
        self._authorizer = authorizer
        self._metrics = metrics

    async def Authorize(  # noqa: N802
        self, request: policy_pb2.AuthorizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> policy_pb2.AuthorizeResponse:
        try:
            result = await self._authorizer.authorize(request)
        except CoreSDKError as err:
            self._metrics.requests.labels("Authorize", err.reason).inc()
            await abort(context, err)
            raise
        decision = result.decision
        self._metrics.requests.labels("Authorize", decision.reason).inc()
        return policy_pb2.AuthorizeResponse(
            allowed=decision.allowed,
            reason=decision.reason,
            decision_id=result.decision_id,
            matched_rules=list(decision.matched_rules),
            principal=result.principal if isinstance(result.principal, common_pb2.Principal) else None,
        )
