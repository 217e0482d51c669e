"""Tokens and OAuth: production mode, the JWKS the sidecar trusts, token lifetimes and algorithms, every OAuth app,
PKCE and refresh-token policy — read from the configuration and confirmed against the live control plane."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from coresdk.config.env import is_loopback_host
from coresdk.doctor.model import Check, Context, Status, fail, ok, warn
from coresdk.jose import ALLOWED_ALGS
from coresdk.jose.jwk import KeySetRejected, parse_jwks

MAX_TTL = 3600
MAX_SECRET_AGE_DAYS = 90
MAX_REFRESH_IDLE = 30 * 86400
MAX_REFRESH_ABSOLUTE = 90 * 86400
LEGACY_GRANTS = {"password", "implicit"}


def production(ctx: Context) -> tuple[Status, str, str]:
    env = ctx.get("CORESDK_ENV", "production")
    if env == "development":
        return fail("CORESDK_ENV=development", "unset CORESDK_ENV or set it to production")
    return ok(f"CORESDK_ENV={env}")


def _issuers(ctx: Context) -> list[dict[str, Any]]:
    issuers: list[dict[str, Any]] = []
    if ctx.get("CORESDK_JWKS_URI") or ctx.get("CORESDK_EXPECTED_ISSUER"):
        issuers.append(
            {
                "issuer": ctx.get("CORESDK_EXPECTED_ISSUER"),
                "jwks_uri": ctx.get("CORESDK_JWKS_URI"),
                "audiences": [a for a in ctx.get("CORESDK_EXPECTED_AUDIENCE").split(",") if a.strip()],
            }
        )
    path = ctx.get("CORESDK_ISSUERS_FILE")
    if path:
        issuers.extend(json.loads(Path(path).read_text())["issuers"])
    return issuers


def jwks_configured(ctx: Context) -> tuple[Status, str, str]:
    issuers = _issuers(ctx)
    if not issuers:
        return fail("no issuer configured", "set CORESDK_JWKS_URI, CORESDK_EXPECTED_ISSUER, CORESDK_EXPECTED_AUDIENCE")
    for i in issuers:
        missing = [k for k in ("issuer", "jwks_uri", "audiences") if not i.get(k)]
        if missing:
            return fail(
                f"issuer {i.get('issuer') or '?'} lacks {', '.join(missing)}",
                "every issuer needs its issuer URL, JWKS URI and at least one audience (iss and aud are checked)",
            )
    return ok(f"{len(issuers)} issuer(s), iss and aud set")


def jwks_reachable(ctx: Context) -> tuple[Status, str, str]:
    issuers = _issuers(ctx)
    if not issuers:
        return fail("no JWKS URI configured", "set CORESDK_JWKS_URI")
    details = []
    for i in issuers:
        uri = i.get("jwks_uri", "")
        try:
            status, doc = ctx.json(uri)
        except OSError as exc:
            return fail(f"{uri} unreachable: {exc}", "make the JWKS reachable from the sidecar")
        if status != 200:
            return fail(f"{uri} answered {status}", "make the JWKS reachable from the sidecar")
        try:
            keys = parse_jwks(doc)
        except KeySetRejected as exc:
            return fail(f"{uri}: {exc}", "publish only public RS256/ES256/PS256 keys of adequate size")
        details.append(f"{uri}: {len(keys.keys)} key(s)")
        algs = {str(k["alg"]) for k in doc["keys"] if isinstance(k, dict) and k.get("alg")}
        if algs - ALLOWED_ALGS:
            return fail(
                f"{uri} advertises {', '.join(sorted(algs - ALLOWED_ALGS))}",
                f"sign only with {', '.join(sorted(ALLOWED_ALGS))}",
            )
    return ok("; ".join(details))


def token_policy(ctx: Context) -> tuple[Status, str, str]:
    values = {
        "CORESDK_ACCESS_TOKEN_TTL": int(ctx.get("CORESDK_ACCESS_TOKEN_TTL", "900")),
        "CORESDK_MAX_TOKEN_TTL": int(ctx.get("CORESDK_MAX_TOKEN_TTL", str(MAX_TTL))),
    }
    long = [f"{k}={v}" for k, v in values.items() if v > MAX_TTL]
    if long:
        return fail(
            f"token lifetime above 1 h: {', '.join(long)}", "keep access tokens at 3600 s or less (900 s default)"
        )
    return ok(
        f"algorithms {', '.join(sorted(ALLOWED_ALGS))} (none/HS* refused); access TTL "
        f"{values['CORESDK_ACCESS_TOKEN_TTL']} s; sidecar max {values['CORESDK_MAX_TOKEN_TTL']} s"
    )


def _apps(ctx: Context) -> list[dict[str, Any]]:
    if not ctx.admin_token():
        raise RuntimeError("CPOD_ADMIN_TOKEN (or CPOD_ADMIN_TOKEN_FILE) is not set: the doctor cannot list OAuth apps")
    status, body = ctx.json(f"{ctx.cp_url}/v1/oauth/apps", ctx.admin_headers())
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"listing OAuth apps answered {status}")
    apps: list[dict[str, Any]] = body["apps"]
    return apps


def _redirect_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    if "*" in uri:
        return "wildcard"
    if parts.fragment:
        return "fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return None
    if parts.scheme not in ("http", "https") and "." in parts.scheme:  # private-use scheme (RFC 8252)
        return None
    return "not https"


def oauth_apps(ctx: Context) -> tuple[Status, str, str]:
    apps = _apps(ctx)
    if not apps:
        return warn("no OAuth apps registered", "register one app per service with its own scopes")
    problems: list[str] = []
    client_ids = [a["client_id"] for a in apps]
    if len(set(client_ids)) != len(client_ids):
        problems.append("client_id shared between apps")
    for a in apps:
        name = a["name"]
        if not a["scopes"] or any("*" in s for s in a["scopes"]):
            problems.append(f"{name}: scopes must be declared, without wildcards")
        for uri in a["redirect_uris"]:
            problem = _redirect_problem(uri)
            if problem:
                problems.append(f"{name}: redirect URI {uri} ({problem})")
        if LEGACY_GRANTS & set(a["grant_types"]):
            problems.append(f"{name}: legacy grant {', '.join(sorted(LEGACY_GRANTS & set(a['grant_types'])))}")
        active = [s for s in a.get("secrets", []) if s.get("active")]
        if a["client_type"] == "confidential" and active:
            newest = min(s["age_days"] for s in active)
            if newest > MAX_SECRET_AGE_DAYS:
                problems.append(f"{name}: client secret {newest} days old")
    if problems:
        return fail(
            "; ".join(problems), "fix each app (PATCH /v1/oauth/apps/{id}, POST .../rotate-secret for old secrets)"
        )
    return ok(f"{len(apps)} app(s): own client_id, declared scopes, exact redirect URIs, secrets <= 90 days")


def pkce(ctx: Context) -> tuple[Status, str, str]:
    status, meta = ctx.json(f"{ctx.cp_url}/.well-known/oauth-authorization-server")
    if status != 200 or not isinstance(meta, dict):
        return fail(f"discovery answered {status}", "the control plane must serve RFC 8414 metadata")
    methods = meta.get("code_challenge_methods_supported")
    if methods != ["S256"]:
        return fail(f"code_challenge_methods_supported={methods}", "offer S256 only (RFC 9700: no plain)")
    apps = [a for a in _apps(ctx) if "authorization_code" in a["grant_types"] and a["redirect_uris"]]
    if not apps:
        return ok("S256 only (no authorization_code app to probe)")
    app = apps[0]
    base = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": app["redirect_uris"][0],
        "scope": app["scopes"][0],
    }
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # any well-formed S256 challenge
    probes = {
        "without code_challenge": {**base, "state": "doctor-probe"},
        "without state": {**base, "code_challenge": challenge, "code_challenge_method": "S256"},
        "with code_challenge_method=plain": {
            **base,
            "state": "doctor-probe",
            "code_challenge": challenge,
            "code_challenge_method": "plain",
        },
    }
    for what, params in probes.items():
        code, _, headers = ctx.http("GET", f"{ctx.cp_url}/v1/oauth/authorize?{urlencode(params)}")
        refused = code == 400 or (code in (302, 303) and "error=" in headers.get("Location", ""))
        if not refused:
            return fail(
                f"an authorization request {what} was accepted ({code})",
                "require PKCE (S256) and state for every authorization_code client",
            )
    return ok("S256 only; requests without code_challenge, without state, or with plain are refused")


def refresh_policy(ctx: Context) -> tuple[Status, str, str]:
    idle = int(ctx.get("CORESDK_REFRESH_IDLE_TTL", str(14 * 86400)))
    absolute = int(ctx.get("CORESDK_REFRESH_ABSOLUTE_TTL", str(30 * 86400)))
    grace = int(ctx.get("CORESDK_REFRESH_GRACE", "0"))
    if idle > MAX_REFRESH_IDLE or absolute > MAX_REFRESH_ABSOLUTE:
        return fail(
            f"refresh tokens live long: idle {idle // 86400} d, absolute {absolute // 86400} d",
            "keep CORESDK_REFRESH_IDLE_TTL <= 30 d and CORESDK_REFRESH_ABSOLUTE_TTL <= 90 d",
        )
    detail = f"rotated on every use, replay revokes the family; idle {idle // 86400} d, absolute {absolute // 86400} d"
    if grace > 0:
        return warn(f"{detail}; grace window {grace} s", "a grace window of 0 s is the strictest setting")
    return ok(detail)


CHECKS = [
    Check("env.production", "Production mode", production),
    Check("jwks.configured", "Issuer, audience and JWKS URI set", jwks_configured),
    Check("jwks.reachable", "JWKS reachable with valid public keys", jwks_reachable),
    Check("tokens.policy", "Algorithm allowlist and token lifetime <= 1 h", token_policy),
    Check("oauth.apps", "OAuth apps: own client_id, scopes, redirect URIs, secret age", oauth_apps),
    Check("oauth.pkce", "PKCE (S256) and state enforced", pkce),
    Check("oauth.refresh", "Refresh rotation, replay detection, bounded lifetimes", refresh_policy),
]
