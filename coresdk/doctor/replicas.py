"""A replicated control plane acting as one: every replica signs with the same key and publishes the same JWKS, keeps
its rate limits in the shared database, and exactly one of them holds the background work (checkpoints, retention,
sink shipping).

The replicas are asked directly when CORESDK_CP_REPLICA_URLS lists them (one URL per pod, e.g. through a headless
Service); otherwise the Service at CORESDK_CP_URL is asked several times on fresh connections, which reaches the
replicas behind it in turn. Each answers GET /api/v1/replica with what it believes.
"""

from __future__ import annotations

from typing import Any

from coresdk.doctor.model import Check, Context, Status, fail, ok

SAMPLES = 8  # requests to the Service when the replicas are not listed: enough to meet each of a few replicas


def replica_urls(ctx: Context) -> list[str]:
    listed = [u.strip().rstrip("/") for u in ctx.get("CORESDK_CP_REPLICA_URLS").split(",") if u.strip()]
    return listed or [ctx.cp_url] * SAMPLES


def replica_views(ctx: Context) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each distinct replica's own account, by its identity; and the URLs that did not answer properly."""
    views: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for url in replica_urls(ctx):
        status, body = ctx.json(f"{url}/api/v1/replica", {**ctx.admin_headers(), "Connection": "close"})
        if status != 200 or not isinstance(body, dict) or "replica" not in body:
            failed.append(f"{url} ({status})")
            continue
        views[str(body["replica"])] = body
    return views, failed


def _unreachable(failed: list[str]) -> tuple[Status, str, str]:
    return fail(
        f"no answer from {', '.join(sorted(set(failed)))}",
        "give the doctor CORESDK_CP_URL (or CORESDK_CP_REPLICA_URLS) and CPOD_ADMIN_TOKEN",
    )


def keys_agree(ctx: Context) -> tuple[Status, str, str]:
    views, failed = replica_views(ctx)
    if failed:
        return _unreachable(failed)
    active = {v["active_kid"] for v in views.values()}
    published = {tuple(v["jwks_kids"]) for v in views.values()}
    if len(active) > 1 or len(published) > 1:
        return fail(
            f"{len(views)} replicas disagree: signing with {sorted(active)}, publishing {sorted(published)}",
            "a replica that does not follow key changes: check its database connection and restart it",
        )
    missing = active - set(next(iter(published), ()))
    if missing:
        return fail(f"the signing key {sorted(missing)} is not in the JWKS", "restart the control plane")
    kids = next(iter(published))
    return ok(f"{len(views)} replica(s) sign with {next(iter(active))} and publish the same {len(kids)} key(s)")


def rate_limits_shared(ctx: Context) -> tuple[Status, str, str]:
    views, failed = replica_views(ctx)
    if failed:
        return _unreachable(failed)
    local = sorted(name for name, v in views.items() if v.get("rate_limits") != "database")
    if not local:
        return ok(f"{len(views)} replica(s) count rate limits in the shared database")
    if len(views) == 1 and views[local[0]].get("store") == "sqlite":
        return ok("one control plane on SQLite (single node): its in-memory limits are the whole count")
    return fail(
        f"rate limits counted per process on {', '.join(local)}: a limit grows with the replica count",
        "run every replica on the same PostgreSQL DATABASE_URL",
    )


def one_leader(ctx: Context) -> tuple[Status, str, str]:
    views, failed = replica_views(ctx)
    if failed:
        return _unreachable(failed)
    leaders = {str(v.get("leader")) for v in views.values()}
    leading = sorted(name for name, v in views.items() if v.get("leading"))
    if len(leaders) != 1 or None in {v.get("leader") for v in views.values()}:
        return fail(
            f"the replicas do not agree on one leader: {sorted(leaders)}",
            "checkpoints and sink shipping are stalled: check the replicas' database connections",
        )
    if len(leading) > 1:
        return fail(f"{len(leading)} replicas believe they lead: {leading}", "restart them one at a time")
    return ok(f"{next(iter(leaders))} holds the background work ({len(views)} replica(s) seen)")


CHECKS = [
    Check("replicas.keys", "Replicas sign with one key and publish one JWKS", keys_agree),
    Check("replicas.rate_limits", "Rate limits shared by every replica", rate_limits_shared),
    Check("replicas.leader", "One replica holds checkpoints, retention and sink shipping", one_leader),
]
