"""Sidecar credentials: each sidecar holds its own enrolled credential, and the shared CORESDK_SIDECAR_TOKEN (one
secret that writes every chain) is accepted nowhere but in development."""

from __future__ import annotations

import re
from pathlib import Path

from coresdk.doctor.model import Check, Context, Status, fail, ok, warn

# "<sidecar id>.<secret>" as POST /api/v1/sidecars hands it out
ENROLLED = re.compile(r"sc_[0-9a-f]{24}\.[A-Za-z0-9_\-]{43,}")
ENROL = (
    "enrol each sidecar (coresdk sidecar enrol --name ... --chain ...) and give it that credential as CORESDK_CP_TOKEN"
)


def _sidecar_credential(ctx: Context) -> str:
    token = ctx.get("CORESDK_CP_TOKEN")
    path = ctx.get("CORESDK_CP_TOKEN_FILE")
    if not token and path:
        token = Path(path).read_text().strip()
    return token


def _feed_answers(ctx: Context, token: str) -> int:
    status, _, _ = ctx.http("GET", f"{ctx.cp_url}/api/v1/revocations?since=0", {"Authorization": f"Bearer {token}"})
    return status


def sidecar_credential(ctx: Context) -> tuple[Status, str, str]:
    production = ctx.get("CORESDK_ENV", "production") != "development"
    shared = ctx.get("CORESDK_SIDECAR_TOKEN")
    problems: list[str] = []
    notes: list[str] = []
    credential = _sidecar_credential(ctx)
    if credential:
        if shared and credential == shared:
            problems.append("the sidecar presents the shared CORESDK_SIDECAR_TOKEN as CORESDK_CP_TOKEN")
        elif not ENROLLED.fullmatch(credential):
            problems.append("CORESDK_CP_TOKEN is not an enrolled sidecar credential")
        elif ctx.get("CORESDK_CP_URL") and _feed_answers(ctx, credential) != 200:
            problems.append("the control plane refuses the sidecar's credential (revoked or unknown)")
        else:
            notes.append(f"sidecar uses enrolled credential {credential.partition('.')[0]}")
    if not ctx.admin_token():
        raise RuntimeError("CPOD_ADMIN_TOKEN (or CPOD_ADMIN_TOKEN_FILE) is not set: the doctor cannot list sidecars")
    status, body = ctx.json(f"{ctx.cp_url}/api/v1/sidecars", ctx.admin_headers())
    if status != 200 or not isinstance(body, dict):
        return fail(
            f"listing enrolled sidecars answered {status}", "give the doctor CORESDK_CP_URL and CPOD_ADMIN_TOKEN"
        )
    live = [s for s in body.get("sidecars", []) if s.get("revoked_at") is None]
    notes.append(f"{len(live)} enrolled sidecar(s)")
    accepted = body.get("shared_token_accepted") is not False
    if shared and production and not accepted and _feed_answers(ctx, shared) == 200:
        accepted = True  # the control plane says no, the feed says yes: believe what it does
    if accepted and production:
        problems.append("the control plane accepts the shared CORESDK_SIDECAR_TOKEN (it runs in development mode)")
    if problems:
        return fail("; ".join(problems), ENROL + "; run the control plane with CORESDK_ENV=production")
    if accepted:
        return warn("; ".join([*notes, "the shared token is accepted (development only)"]), ENROL)
    if shared and production:
        return warn(
            "; ".join([*notes, "CORESDK_SIDECAR_TOKEN is set; the control plane refuses it in production"]),
            "remove CORESDK_SIDECAR_TOKEN from the production configuration",
        )
    return ok("; ".join([*notes, "the shared token is refused"]))


CHECKS = [
    Check(
        "sidecar.credential", "Each sidecar has its own credential; no shared token in production", sidecar_credential
    ),
]
