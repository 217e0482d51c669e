"""The principal of the request being handled, for code that has no request object at hand (audit, logging).

Set by every integration once the request is authenticated, and only for the duration of that request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from coresdk.client.results import Principal

_current: ContextVar[Principal | None] = ContextVar("coresdk_principal", default=None)


def current_principal() -> Principal | None:
    return _current.get()


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)


def bind(principal: Principal) -> None:
    """For a framework that runs each request in its own task (ASGI servers): set for the rest of that task."""
    _current.set(principal)
