"""Every HTML page the control plane serves, rendered by Jinja2 with autoescape and sent with browser defences.

Escaping is by construction: templates are the only way to produce HTML here, and autoescape is on for every one
of them, so a parameter echoed in an error page cannot become markup. Each page also carries a Content-Security-
Policy without script (one per-response nonce for the inline style), `X-Frame-Options: DENY` against clickjacking,
`nosniff`, `no-store`, and `Referrer-Policy: same-origin`: unlike `no-referrer`, it lets the browser send its real
`Origin` on the sign-in form's POST (with `no-referrer` Chromium sends `Origin: null`), which is what the
cross-site check needs.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping

import jinja2
from aiohttp import web

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("controlplane.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
REFERRER_POLICY = "same-origin"


def page_headers(nonce: str, form_targets: Iterable[str] = ()) -> dict[str, str]:
    """form-action also names where the form's answer redirects (the client's redirect URI): browsers enforce
    form-action on the redirect that follows a form submission."""
    form_action = " ".join(["'self'", *form_targets])
    csp = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": REFERRER_POLICY,
        "Cache-Control": "no-store",
    }


def render(
    template: str, context: Mapping[str, object], status: int = 200, form_targets: Iterable[str] = ()
) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    body = _ENV.get_template(template).render(nonce=nonce, **context)
    return web.Response(text=body, status=status, content_type="text/html", headers=page_headers(nonce, form_targets))


def error_page(description: str, status: int = 400) -> web.Response:
    return render("error.html", {"description": description}, status)


def login_page(
    app_name: str,
    scopes: str,
    params: Mapping[str, str],
    csrf: str,
    redirect_target: str,
    error: str = "",
    username: str = "",
    status: int = 200,
) -> web.Response:
    hidden = [*params.items(), ("csrf", csrf)]
    context = {
        "app_name": app_name,
        "scopes": scopes,
        "hidden": hidden,
        "error": error,
        "username": username,
        "action": "/v1/oauth/authorize",
    }
    return render("login.html", context, status, form_targets=[redirect_target] if redirect_target else [])
