"""controlplane.web in process: pages escape whatever they are given, carry browser defences, and the sign-in
form is accepted only from our own origins."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from controlplane.web.origin import form_post_allowed
from controlplane.web.pages import error_page, login_page

HOSTILE = st.lists(st.sampled_from([*"<>\"'&/=ab ", "<script>", "</p>", "onerror="]), max_size=12).map("".join)


def _text(resp: web.Response) -> str:
    return str(resp.text)


@given(HOSTILE)
def test_error_page_escapes_everything(description: str) -> None:
    body = _text(error_page(description))
    inner = body.split('role="alert">', 1)[1].split("</p>", 1)[0]
    assert "<" not in inner and ">" not in inner and '"' not in inner


@given(st.dictionaries(HOSTILE, HOSTILE, max_size=4), HOSTILE, HOSTILE, HOSTILE)
def test_login_page_escapes_parameters(params: dict[str, str], app: str, username: str, error: str) -> None:
    body = _text(login_page(app, "a:b", params, "1.x", "https://app.example", error, username))
    # only the template's own tags are present: every '<' starts a known element
    tags = set(re.findall(r"<\s*/?\s*([a-zA-Z!][a-zA-Z0-9]*)", body))
    assert tags <= {
        "!doctype",
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "p",
        "strong",
        "form",
        "input",
        "label",
        "button",
    }
    assert "<script" not in body.lower()


def test_pages_carry_csp_frame_and_referrer_headers() -> None:
    resp = login_page("app", "a:b", {"state": "s"}, "1.x", "https://app.example")
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert "form-action 'self' https://app.example" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'nonce="{nonce.group(1)}"' in resp.text
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert error_page("x").headers["Content-Security-Policy"].startswith("default-src 'none'")


ALLOWED = ("https://login.example", "http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"Origin": "https://login.example", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "http://127.0.0.1:8080"}, True),
        ({}, True),  # not a browser: the signed form token decides
        ({"Sec-Fetch-Site": "none"}, True),
        ({"Origin": "null"}, False),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "https://login.example.evil.example"}, False),
        ({"Origin": "https://login.example", "Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
    ],
)
def test_form_post_origin_rule(headers: dict[str, str], ok: bool) -> None:
    assert form_post_allowed(headers, ALLOWED) is ok


def test_an_origin_sent_twice_has_no_single_reading() -> None:
    from multidict import CIMultiDict

    for values in (
        ["https://evil.example", "https://login.example"],
        ["https://login.example", "https://evil.example"],
    ):
        headers: CIMultiDict[str] = CIMultiDict([("Origin", v) for v in values])
        assert form_post_allowed(headers, ALLOWED) is False
    twice: CIMultiDict[str] = CIMultiDict([("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Site", "cross-site")])
    assert form_post_allowed(twice, ALLOWED) is False
