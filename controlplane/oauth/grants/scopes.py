"""Scope rules shared by the grants: a request may narrow a grant, never widen it; withdrawn scopes are gone."""

from __future__ import annotations

from controlplane.oauth.errors import OAuthError
from controlplane.store.models import OAuthApp


def requested_scopes(scope: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The scope parameter as a subset of allowed (absent or empty: all of allowed); never more."""
    if scope is None:
        return allowed
    wanted = tuple(dict.fromkeys(scope.split()))
    if not wanted:
        return allowed
    extra = [s for s in wanted if s not in allowed]
    if extra:
        raise OAuthError("invalid_scope", f"scope exceeds what was granted: {' '.join(extra)}")
    return wanted


def still_allowed(granted: tuple[str, ...], app: OAuthApp) -> tuple[str, ...]:
    """The part of a grant the client may still hold: scopes withdrawn from the app since are gone for good.

    A refresh family (or a pending code) carries the scopes of its consent; the app's scopes are the ceiling an
    administrator sets now. A scope removed from the app must not live on in tokens minted from an older grant.
    """
    return tuple(s for s in granted if s in app.scopes)
