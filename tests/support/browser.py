"""A person at the sign-in page: follow the authorization URL, fill the form, return the redirect."""

from __future__ import annotations

import html
import re

import requests

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def login_form(authorize_url: str) -> tuple[requests.Session, dict[str, str], requests.Response]:
    session = requests.Session()
    page = session.get(authorize_url, allow_redirects=False, timeout=10)
    fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(page.text)}
    return session, fields, page


def sign_in(authorize_url: str, username: str, password: str) -> requests.Response:
    session, fields, page = login_form(authorize_url)
    assert page.status_code == 200, page.text
    action = authorize_url.split("?", 1)[0]
    return session.post(
        action, data={**fields, "username": username, "password": password}, allow_redirects=False, timeout=10
    )
