"""Findings 2, 6, 7 and 8, attacked through the running gateway: reflected markup, one address for every client,
chunked bodies past the limit, and identity or address headers smuggled in other spellings."""

from __future__ import annotations

import html
import re
import secrets
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.rawhttp import RawResponse, raw_request
from tests.system.conftest import System

PASSWORD = "correct horse battery staple"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


# --- finding 2: reflected markup ----------------------------------------------------------------------------------


def test_markup_in_parameter_names_is_escaped_through_the_gateway(system: System) -> None:
    payload = "<img src=x onerror=alert(1)>"
    target = f"/v1/oauth/authorize?{quote(payload)}=1&{quote(payload)}=2"
    for port in (system.gateway.port, system.cp.port):
        resp = raw_request(port, "GET", target)
        assert resp.status == 400
        assert "<img" not in resp.text and html.escape(payload) in resp.text.replace("&#39;", "'")
        csp = resp.header("Content-Security-Policy") or ""
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert resp.header("X-Frame-Options") == "DENY"
        assert resp.header("X-Content-Type-Options") == "nosniff"
        assert resp.header("Referrer-Policy") == "same-origin"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="<>\"'&=/ abcimgscript();", min_size=1, max_size=30))
def test_nothing_a_client_sends_becomes_markup(system: System, value: str) -> None:
    params = {"client_id": value, "redirect_uri": value, "state": value}
    resp = raw_request(system.gateway.port, "GET", "/v1/oauth/authorize?" + urlencode(params))
    body = resp.text
    for tag in ("<img", "<script", "<a ", "<svg"):
        assert tag not in body.lower() or tag not in value.lower()
    assert not re.search(r"<(?!/?(?:!doctype|html|head|meta|title|style|body|h1|p)\b)", body, re.IGNORECASE), body


# --- finding 6: the real client address ----------------------------------------------------------------------------


def _sign_in(
    system: System,
    source: str,
    subject: str,
    password: str,
    port: int | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> RawResponse:
    """A person at one address: load the sign-in page, post the form (through the gateway unless port is given)."""
    port = port or system.gateway.port
    query = urlencode(
        {
            "response_type": "code",
            "client_id": system.orders_app["client_id"],
            "redirect_uri": f"http://127.0.0.1:{system.upstream.port}/callback",
            "scope": "orders:read",
            "state": secrets.token_urlsafe(8),
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )
    page = raw_request(port, "GET", f"/v1/oauth/authorize?{query}", source=source)
    assert page.status == 200, page.text
    fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
    body = urlencode({**fields, "username": subject, "password": password}).encode()
    return raw_request(
        port,
        "POST",
        "/v1/oauth/authorize",
        [("Content-Type", "application/x-www-form-urlencoded"), *(extra or [])],
        body=body,
        source=source,
    )


def test_one_client_cannot_lock_a_user_out_for_others_behind_the_gateway(system: System) -> None:
    subject = f"carol-{secrets.token_hex(3)}"
    system.cp.create_user(subject, PASSWORD, tenant_id="tenant-a", roles=["viewer"])
    statuses = [_sign_in(system, "127.0.0.2", subject, "wrong password").status for _ in range(11)]
    assert statuses[-1] == 429 and set(statuses[:10]) == {401}, statuses
    # another person, another address, same gateway: not locked out
    ok = _sign_in(system, "127.0.0.3", subject, PASSWORD)
    assert ok.status == 302 and "code=" in (ok.header("Location") or ""), ok.text
    failed = [e for e in system.cp.events(type="login_failed") if e["subject"] == subject]
    assert failed and {e["ip"] for e in failed} == {"127.0.0.2"}


def test_guessing_from_many_addresses_is_slowed_never_a_lockout(system: System) -> None:
    """18 wrong passwords from 6 addresses pass the per-user budget (15/min): they are slowed, not refused, and the
    user still signs in."""
    subject = f"erin-{secrets.token_hex(3)}"
    system.cp.create_user(subject, PASSWORD, tenant_id="tenant-a", roles=["viewer"])

    def slowed() -> float:
        metrics = system.cp.admin("GET", "/metrics").text
        line = re.search(r'coresdk_cp_rate_limited_total\{endpoint="login",kind="user_slowed"\} ([0-9.]+)', metrics)
        return float(line.group(1)) if line else 0.0

    before = slowed()
    statuses = [_sign_in(system, f"127.0.1.{n}", subject, "wrong").status for n in range(6) for _ in range(3)]
    assert set(statuses) == {401}, statuses
    assert slowed() > before
    ok = _sign_in(system, "127.0.1.99", subject, PASSWORD)
    assert ok.status == 302 and "code=" in (ok.header("Location") or "")


def test_a_client_cannot_choose_its_address_by_header(system: System) -> None:
    """Through the gateway (which replaces the header) and directly (an untrusted peer's header is ignored)."""
    subject = f"dave-{secrets.token_hex(3)}"
    system.cp.create_user(subject, PASSWORD, tenant_id="tenant-a", roles=["viewer"])
    for port in (system.gateway.port, system.cp.port):
        query = f"client_id={system.orders_app['client_id']}"
        raw_request(port, "GET", f"/v1/oauth/authorize?{query}", [("X-Forwarded-For", "9.9.9.9")], source="127.0.0.4")
    _sign_in(system, "127.0.0.4", subject, "nope")
    _sign_in(system, "127.0.0.5", subject, "nope", port=system.cp.port)
    ips = {e["ip"] for e in system.cp.events(type="login_failed") if e["subject"] == subject}
    assert ips == {"127.0.0.4", "127.0.0.5"}


# --- finding 7: chunked bodies -------------------------------------------------------------------------------------


def test_chunked_body_over_the_limit_is_refused_and_nothing_is_forwarded(system: System) -> None:
    token = system.cp.client_token(system.orders_app, "orders:write")
    before = len(system.upstream.seen)
    chunks = [b"x" * 65536] * 160  # 10 MiB against CORESDK_GATEWAY_MAX_BODY=65536
    resp = raw_request(system.gateway.port, "POST", "/v1/orders", [("Authorization", f"Bearer {token}")], chunks=chunks)
    assert resp.status == 413 and resp.json()["error"] == "request_too_large"
    assert system.upstream.seen[before:] == []
    # and to the control plane's public endpoints too
    resp = raw_request(system.gateway.port, "POST", "/v1/oauth/token", chunks=chunks)
    assert resp.status == 413


def test_chunked_body_within_the_limit_is_forwarded_whole(system: System) -> None:
    token = system.cp.client_token(system.orders_app, "orders:write")
    chunks = [b"y" * 1000] * 65  # 65,000 bytes: just within the limit
    resp = raw_request(system.gateway.port, "POST", "/v1/orders", [("Authorization", f"Bearer {token}")], chunks=chunks)
    assert resp.status == 200, resp.text
    assert system.upstream.seen[-1]["body_bytes"] == 65000


# --- finding 8: identity and address headers in every spelling -----------------------------------------------------


def _spellings(name: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(name), max_size=len(name)).flatmap(
        lambda ups: st.sampled_from(["-", "_"]).map(
            lambda sep: "".join(c.upper() if u else c.lower() for c, u in zip(name, ups, strict=True)).replace("-", sep)
        )
    )


IDENTITY = st.sampled_from(["X-User-ID", "X-Tenant-ID", "X-Scopes", "X-Roles", "X-Client-ID", "X-Request-ID"])
FORWARDING = st.sampled_from(["Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_identity_and_address_headers_are_the_gateways_in_every_spelling(system: System, data: st.DataObject) -> None:
    name = data.draw(IDENTITY | FORWARDING)
    spelled = data.draw(_spellings(name))
    resp = raw_request(
        system.gateway.port,
        "GET",
        "/v1/agent/tasks",
        [("Authorization", f"Bearer {system.tasks_reader}"), (spelled, "root"), (spelled.lower(), "6.6.6.6")],
    )
    assert resp.status == 200, resp.text
    items = system.upstream.seen[-1]["header_items"]
    assert not any("_" in k for k, _ in items), items
    values = [v for _, v in items]
    assert "root" not in values and "6.6.6.6" not in values, items
    headers = {k.lower(): v for k, v in items}
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["forwarded"].startswith("for=127.0.0.1")


def test_reported_underscore_header_does_not_reach_the_application(system: System) -> None:
    resp = raw_request(
        system.gateway.port,
        "GET",
        "/v1/agent/tasks",
        [("Authorization", f"Bearer {system.tasks_reader}"), ("X_User_ID", "root"), ("X-Real-IP", "10.9.9.9")],
    )
    assert resp.status == 200
    items = system.upstream.seen[-1]["header_items"]
    assert [v for k, v in items if k.lower().replace("_", "-") == "x-user-id"] != ["root"]
    assert "root" not in [v for _, v in items] and "10.9.9.9" not in [v for _, v in items]


def test_a_sign_in_post_with_two_origins_is_refused_through_the_gateway(system: System) -> None:
    """The gateway forwards a header sent twice as it came, and the control plane refuses the ambiguity (before, the
    gateway kept the last Origin: evil-then-good signed in)."""
    subject = f"olga-{secrets.token_hex(3)}"
    system.cp.create_user(subject, PASSWORD, tenant_id="tenant-a", roles=["viewer"])
    origins = [("Origin", "http://evil.example"), ("Origin", system.gateway.url)]
    for port in (system.gateway.port, system.cp.port):
        resp = _sign_in(system, "127.0.0.6", subject, PASSWORD, port=port, extra=origins)
        assert resp.status == 403 and "code=" not in (resp.header("Location") or ""), (port, resp.status)
