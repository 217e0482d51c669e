"""Finding 1: the gateway authorized one path and forwarded another. Attacked from outside, with raw request targets.

The property: whatever target a client sends, either the gateway refuses it, or the application receives exactly
the path the gateway matched (byte for byte) and that path is one the token may use; and nothing the control plane
keeps internal ever answers through the gateway.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.rawhttp import raw_request
from tests.system.conftest import Front, System

# Segments an attacker mixes: names of real routes, and every spelling of a separator or a dot.
NAMES = ["v1", "agent", "tasks", "1", "oauth", "apps", "api", "audit", "keys", "users", ".well-known", "token"]
HOSTILE = [
    ".",
    "..",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%252e%252e",
    "..%2f",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "\\",
    "..\\",
    ";",
    ";x=1",
    "tasks;a",
    "",
    "%00",
    "%2500",
    "%41",
    "%7e",
    "%u002e",
    "%c0%ae",
    "%ef%bc%8e",
    "%20",
    "%C3%A9",
    "~",
    "*",
    "%",
    "%zz",
]
INTERNAL = [
    "/v1/oauth/apps",
    "/v1/users",
    "/api/v1/keys",
    "/api/v1/keys/rotate",
    "/api/v1/token-events",
    "/api/v1/revocations",
    "/api/v1/audit",
    "/api/v1/audit?verify_chain=true",
    "/api/v1/audit/export",
    "/api/v1/audit/prune",
    "/api/v1/audit/ingest",
    "/api/v1/audit/checkpoint",
    "/api/v1/sidecars",
    "/api/v1/replica",
    "/metrics",
]
# What the tasks:read token may reach through config/routes.json.
ALLOWED = [re.compile(r"/v1/agent/tasks"), re.compile(r"/v1/agent/tasks/[^/]+")]


def _is_dot_free(decoded: str) -> bool:
    return all(seg not in (".", "..") for seg in decoded.split("/"))


def _get(
    system: System, front: Front, target: str, token: str, method: str = "GET"
) -> tuple[int, dict[str, object] | None, str]:
    before = len(system.upstream.seen)
    resp = raw_request(front.port, method, target, [("Authorization", f"Bearer {token}")])
    seen = system.upstream.seen[before:]
    return resp.status, (seen[-1] if seen else None), resp.text


@pytest.mark.parametrize(
    "target",
    [
        "/.well-known/../v1/oauth/apps",
        "/.well-known/%2e%2e/api/v1/audit?verify_chain=true",
        "/.well-known/../api/v1/keys",
        "/v1/oauth/token/../apps",
        "/v1/oauth/token/%2E%2E/apps",
        "/api/v1/jwks/../keys",
        "/.well-known/jwks.json/..%2f..%2fapi/v1/keys",
        "//api/v1/keys",
        "/v1/oauth/apps",
        "/api/v1/audit?verify_chain=true",
    ],
)
def test_reported_control_plane_bypasses_are_refused(system: System, front: Front, target: str) -> None:
    """The findings' own URLs, with the admin token: before, 200 from the control plane's admin API."""
    status, seen, body = _get(system, front, target, system.admin_token)
    assert status in (400, 401, 404), (status, body)
    assert seen is None
    assert '"apps"' not in body and '"keys"' not in body and "chain_valid" not in body


@pytest.mark.parametrize("target", ["/v1/agent/tasks/%2e%2e", "/v1/agent/tasks/..", "/v1/agent/tasks/.%2E"])
def test_dot_segment_after_a_template_is_refused(system: System, front: Front, target: str) -> None:
    """Before: authorized as tasks/{id}, and the application received /v1/agent/."""
    status, seen, body = _get(system, front, target, system.tasks_reader)
    assert status == 400, body
    assert seen is None
    assert "ambiguous" in body


def test_matched_path_reaches_the_application_byte_for_byte(system: System, front: Front) -> None:
    for target in ["/v1/agent/tasks/abc", "/v1/agent/tasks/%C3%A9t%C3%A9", "/v1/agent/tasks/a%20b", "/v1/agent/tasks"]:
        status, seen, body = _get(system, front, target + "?q=%2e%2e/x", system.tasks_reader)
        assert status == 200, body
        assert seen is not None and seen["raw_path"] == target + "?q=%2e%2e/x"


path_segments = st.lists(st.sampled_from(NAMES + HOSTILE), min_size=1, max_size=7)
prefixes = st.sampled_from(["", "/v1/agent/tasks", "/.well-known", "/v1/oauth/token", "/api/v1/jwks", "/v1/agent"])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=prefixes, segments=path_segments, query=st.sampled_from(["", "?a=1", "?verify_chain=true"]))
def test_generated_targets_reach_only_what_was_authorized(
    system: System, front: Front, prefix: str, segments: list[str], query: str
) -> None:
    target = prefix + "/" + "/".join(segments) + query
    for token in (system.tasks_reader, system.admin_token):
        status, seen, body = _get(system, front, target, token)
        assert status != 500, body
        assert "chain_valid" not in body and '"apps"' not in body and '"users"' not in body and '"events"' not in body
        if seen is None:
            continue
        # the application got a request: it must be for exactly the bytes sent, on a route the token may use
        raw_path = str(seen["raw_path"]).partition("?")[0]
        assert raw_path == target.partition("?")[0], (target, seen["raw_path"])
        decoded = unquote(raw_path)
        assert _is_dot_free(decoded) and "//" not in decoded and "\\" not in decoded and ";" not in raw_path
        assert any(p.fullmatch(raw_path) for p in ALLOWED), raw_path
        assert token == system.tasks_reader


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    internal=st.sampled_from(INTERNAL),
    public=st.sampled_from(["/.well-known/jwks.json", "/v1/oauth/token", "/api/v1/jwks", "/v1/oauth/authorize"]),
    dots=st.sampled_from(["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "..%2f..", "%252e%252e", "..;"]),
    depth=st.integers(min_value=1, max_value=4),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_no_internal_control_plane_route_answers_through_the_gateway(
    system: System, front: Front, internal: str, public: str, dots: str, depth: int, method: str
) -> None:
    target = public + ("/" + dots) * depth + internal
    status, seen, body = _get(system, front, target, system.admin_token, method)
    assert status in (400, 401, 404, 405), (target, status, body)
    assert seen is None


def test_public_oauth_routes_are_an_exact_list(system: System, front: Front) -> None:
    """Discovery and JWKS answer; the same paths with a suffix, another method or a prefix trick do not."""
    ok = raw_request(front.port, "GET", "/.well-known/oauth-authorization-server")
    assert ok.status == 200 and ok.json()["issuer"] == system.gateway.url
    assert raw_request(front.port, "GET", "/api/v1/jwks").status == 200
    for target in ["/.well-known/oauth-authorization-server/x", "/.well-known/", "/api/v1/jwksx", "/v1/oauth/tokens"]:
        status, seen, body = _get(system, front, target, system.admin_token)
        assert status in (400, 401, 404), (target, status, body)
    wrong = raw_request(front.port, "DELETE", "/v1/oauth/token")
    if front.name == "nginx":  # limit_except in the example: nginx's own refusal
        assert wrong.status == 403
    else:
        assert wrong.status == 405 and wrong.header("Allow") == "POST"
        assert "error" in wrong.json()


def test_absolute_form_and_fragments_are_refused(system: System, front: Front) -> None:
    """The gateway refuses them (400); nginx reduces an absolute-form target to its path first, which is then
    decided like any other (here: the admin token is no access token, 401) and never reaches the control plane."""
    for target in [f"http://127.0.0.1:{system.cp.port}/api/v1/keys", "/v1/agent/tasks#x", "*"]:
        before = len(system.upstream.seen)
        resp = raw_request(front.port, "GET", target, [("Authorization", f"Bearer {system.admin_token}")])
        assert resp.status in ((400,) if front.name == "gateway" else (400, 401)), (target, resp.status, resp.text)
        assert system.upstream.seen[before:] == []
        assert '"keys"' not in resp.text
