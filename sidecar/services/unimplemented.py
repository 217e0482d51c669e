"""Services whose contract exists but whose implementation lands in later work: every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

from typing import Any

import grpc

from coresdk.v1 import policy_pb2_grpc


def _unimplemented(name: str) -> Any:
    async def method(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented in this sidecar yet")

    method.__name__ = name
    return method


def unimplemented_servicer(base: type) -> Any:
    """An instance of a subclass of the generated servicer `base` whose every RPC aborts with UNIMPLEMENTED."""
    methods = {n: _unimplemented(n) for n in vars(base) if not n.startswith("_") and callable(getattr(base, n))}
    return type(f"Unimplemented{base.__name__}", (base,), methods)()


PENDING_SERVICES = ((policy_pb2_grpc.PolicyServiceServicer, policy_pb2_grpc.add_PolicyServiceServicer_to_server),)
