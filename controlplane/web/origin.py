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


def _one(headers: Mapping[str, str], name: str) -> tuple[bool, str | None]:
    """(unambiguous, value): a header sent twice has no single reading, so it is refused, never picked."""
    getall = getattr(headers, "getall", None)
    values = list(getall(name, [])) if getall is not None else ([headers[name]] if name in headers else [])
    return len(values) <= 1, (values[0] if values else None)


def form_post_allowed(headers: Mapping[str, str], allowed_origins: Collection[str]) -> bool:
    single_site, site = _one(headers, "Sec-Fetch-Site")
    single_origin, origin = _one(headers, "Origin")
    if not (single_site and single_origin):
        return False
    if site is not None and site.strip().lower() not in _SAME_SITE_FETCH:
        return False
    if origin is None:
        return True
    return origin.strip().lower() in allowed_origins
