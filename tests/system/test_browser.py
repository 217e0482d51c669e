"""Finding 3: no real browser could sign in. Chromium signs in as a person would, directly on the control plane and
through the gateway, and the code is exchanged for tokens that the gateway accepts; a page on another origin that
submits the sign-in form is refused.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import login_form
from tests.support.chrome import chromium
from tests.support.ports import free_port
from tests.system.conftest import System

PASSWORD = "correct horse battery staple"


def _client(system: System) -> OAuth2Session:
    app = system.orders_app
    return OAuth2Session(
        app["client_id"],
        app["client_secret"],
        scope="orders:read",
        redirect_uri=f"http://127.0.0.1:{system.upstream.port}/callback",
        code_challenge_method="S256",
    )


def _user(system: System) -> str:
    subject = f"browser-{secrets.token_hex(4)}"
    system.cp.create_user(subject, PASSWORD, tenant_id="tenant-a", roles=["editor"])
    return subject


def _sign_in_with_browser(base: str, system: System) -> dict[str, Any]:
    client = _client(system)
    verifier = secrets.token_urlsafe(48)
    uri, state = client.create_authorization_url(f"{base}/v1/oauth/authorize", code_verifier=verifier)
    subject = _user(system)
    with chromium() as driver:
        driver.get(uri)  # type: ignore[attr-defined]
        driver.find_element(By.NAME, "username").send_keys(subject)  # type: ignore[attr-defined]
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)  # type: ignore[attr-defined]
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
        WebDriverWait(driver, 20).until(lambda d: "/callback" in d.current_url)
        landed = str(driver.current_url)  # type: ignore[attr-defined]
    query = parse_qs(urlsplit(landed).query)
    assert query["state"] == [state] and query["iss"] == [system.gateway.url], landed
    # the code is exchanged at the public token endpoint (through the gateway), as the client would
    token = client.fetch_token(
        f"{system.gateway.url}/v1/oauth/token", authorization_response=landed, code_verifier=verifier, state=state
    )
    return {"subject": subject, **dict(token)}


@pytest.mark.parametrize("where", ["gateway", "control plane"])
def test_a_real_browser_signs_in(system: System, where: str) -> None:
    base = system.gateway.url if where == "gateway" else system.cp.url
    token = _sign_in_with_browser(base, system)
    resp = requests.get(
        f"{system.gateway.url}/v1/orders", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    assert system.upstream.seen[-1]["headers"]["X-User-ID"] == token["subject"]


class _AttackerPage(BaseHTTPRequestHandler):
    """An attacker's site: a page that posts a (valid, freshly fetched) sign-in form to the real sign-in endpoint."""

    form_html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.form_html)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[tuple[str, type[_AttackerPage]]]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _AttackerPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # "localhost" is another origin than "127.0.0.1": another site as far as the browser is concerned
    yield f"http://localhost:{port}/", _AttackerPage
    server.shutdown()


def test_a_sign_in_form_posted_from_another_origin_is_refused(
    system: System, attacker: tuple[str, type[_AttackerPage]]
) -> None:
    url, page = attacker
    client = _client(system)
    uri, _ = client.create_authorization_url(
        f"{system.gateway.url}/v1/oauth/authorize", code_verifier=secrets.token_urlsafe(48)
    )
    _, fields, form = login_form(uri)
    assert form.status_code == 200
    subject = _user(system)
    inputs = "".join(
        f'<input type="hidden" name="{k}" value="{v}">'
        for k, v in {**fields, "username": subject, "password": PASSWORD}.items()
    )
    page.form_html = (
        f'<html><body><form id="f" method="post" action="{system.gateway.url}/v1/oauth/authorize">{inputs}'
        '</form><script>document.getElementById("f").submit()</script></body></html>'
    ).encode()
    before = len(system.upstream.seen)
    with chromium() as driver:
        driver.get(url)  # type: ignore[attr-defined]
        WebDriverWait(driver, 20).until(lambda d: "Cross-origin sign-in refused" in d.page_source)
        assert "/callback" not in str(driver.current_url)  # type: ignore[attr-defined]
    assert not any(s["path"] == "/callback" for s in system.upstream.seen[before:])
