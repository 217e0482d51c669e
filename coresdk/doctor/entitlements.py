"""The gateway's entitlements as its route map states them: plans must be named, never implied.

A route map without a `plans` section makes the gateway give every tenant an unlimited plan. That is a fine default
for a laptop and a quiet hole in production (one tenant can take the whole upstream), so the doctor fails it: an
operator who wants no limits says so with an explicit plan.
"""

from __future__ import annotations

import json
from pathlib import Path

from coresdk.config.gateway import load_entitlements
from coresdk.doctor.model import Check, Context, Status, fail, ok, warn
from coresdk.errors import ConfigError


def gateway_entitlements(ctx: Context) -> tuple[Status, str, str]:
    path = Path(ctx.get("CORESDK_ROUTES_FILE", "config/routes.json"))
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return fail(f"route map {path} cannot be read: {exc}", "point CORESDK_ROUTES_FILE at the gateway's route map")
    if not isinstance(doc, dict) or "plans" not in doc:
        return fail(
            f"{path} names no plans: every tenant is unlimited",
            'add "plans" (requests_per_minute, burst) with "tenants" and/or "default_plan" to the route map',
        )
    try:
        entitlements = load_entitlements(path)
    except ConfigError as exc:
        return fail(str(exc), "fix the plans of the route map; the gateway refuses to start with it")
    plans = ", ".join(f"{p.name} {p.requests_per_minute}/min burst {p.burst}" for p in entitlements.plans.values())
    if entitlements.default_plan is None and not entitlements.tenants:
        return warn(
            f"plans ({plans}) but no tenant has one and there is no default_plan: every request is refused",
            'map tenants to plans in "tenants" or name a "default_plan"',
        )
    unlisted = (
        f"unlisted tenants get {entitlements.default_plan}"
        if entitlements.default_plan
        else "unlisted tenants are refused"
    )
    return ok(f"plans {plans}; {len(entitlements.tenants)} tenant(s) mapped; {unlisted}")


CHECKS = [
    Check("gateway.entitlements", "Gateway plans are explicit (no implicit unlimited tenant)", gateway_entitlements)
]
