"""Scope rules shared by the grants (controlplane.oauth.grants.scopes): a request narrows, never widens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.grants.scopes import requested_scopes

SCOPES = st.sampled_from(["a:read", "a:write", "b:read", "admin:all", "x"])


@given(st.lists(SCOPES, max_size=4, unique=True), st.lists(SCOPES, max_size=6))
def test_the_result_is_never_wider_than_what_is_allowed(allowed: list[str], wanted: list[str]) -> None:
    try:
        granted = requested_scopes(" ".join(wanted), tuple(allowed))
    except OAuthError as err:
        assert err.error == "invalid_scope"
        assert any(s not in allowed for s in wanted)
        return
    assert set(granted) <= set(allowed)
    assert granted == (tuple(dict.fromkeys(wanted)) or tuple(allowed))


def test_absent_means_everything_allowed() -> None:
    assert requested_scopes(None, ("a", "b")) == ("a", "b")
    with pytest.raises(OAuthError):
        requested_scopes("c", ())
