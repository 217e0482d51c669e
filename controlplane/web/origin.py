"""Is this form POST from our own page? (OWASP CSRF: verify the origin with standard headers.)

A real browser always says where a form post comes from: `Origin` on every POST (with `Referrer-Policy:
same-origin` it is the page's real origin, not `null`), and `Sec-Fetch-Site` in current browsers. The post is
accepted only from the issuer's origin or a configured public origin; `Origin: null` (sandboxed frames, data: URLs,
some redirects) and any `Sec-Fetch-Site` other than `same-origin`/`none` are refused. A request with neither header
is not a browser's cross-site form post (browsers cannot suppress both), so it falls to the signed form token alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

_SAME_SITE_FETCH = ("same-origin", "none")


def form_post_allowed(headers: Mapping[str, str], allowed_origins: Collection[str]) -> bool:
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site.strip().lower() not in _SAME_SITE_FETCH:
        return False
    origin = headers.get("Origin")
    if origin is None:
        return True
    return origin.strip().lower() in allowed_origins
