"""The server-rendered sign-in page of the authorization endpoint. No script, no external resources."""

from __future__ import annotations

from html import escape

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - CoreSDK</title>
<style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}}
label{{display:block;margin-top:1rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}
button{{margin-top:1.5rem;padding:.6rem 1.2rem}}.error{{color:#a00}}.app{{color:#555}}</style></head>
<body><h1>Sign in</h1><p class="app">to continue to <strong>{app_name}</strong> (scopes: {scopes})</p>
{error}<form method="post" action="/v1/oauth/authorize">
{hidden}<label>Username <input name="username" autocomplete="username" required autofocus value="{username}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></body></html>"""


def render_login(
    app_name: str, scopes: str, params: dict[str, str], csrf: str, error: str = "", username: str = ""
) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">\n' for k, v in {**params, "csrf": csrf}.items()
    )
    return _PAGE.format(
        app_name=escape(app_name),
        scopes=escape(scopes),
        hidden=hidden,
        error=f'<p class="error" role="alert">{escape(error)}</p>' if error else "",
        username=escape(username),
    )
