"""Audit HTTP API: ingest from sidecars, query and verification for admins, checkpoints and proofs."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from aiohttp import web

from controlplane.admin.api import require_admin
from controlplane.admin.sidecar_auth import authenticate_sidecar
from controlplane.audit import retention
from controlplane.http import client_ip, json_object, read_body
from controlplane.oauth.context import Context
from controlplane.oauth.errors import ApiError
from coresdk.audit import chain_id as chain_ids
from coresdk.audit import merkle
from coresdk.audit.record import utc_timestamp

MAX_INGEST = 1000
_FILTERS = {"chain_id", "actor", "action", "resource", "outcome", "tenant_id", "from", "to"}


async def ingest(request: web.Request) -> web.Response:
    """Records from a sidecar, into the chains its credential is bound to; every record is checked before any is
    stored, so a refusal (400 malformed, 403 not this sidecar's chain) changes nothing."""
    ctx: Context = request.app["ctx"]
    caller = await authenticate_sidecar(request)  # not the admin token: it belongs to no chain
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "content type must be application/json")
    body = await read_body(request, 16 * 1024 * 1024)
    try:
        doc = json.loads(body)
    except ValueError:
        raise ApiError(400, "invalid_json", "body is not valid JSON") from None
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, list) or not 0 < len(records) <= MAX_INGEST:
        raise ApiError(400, "invalid_request", f"records must be a list of 1 to {MAX_INGEST} entries")
    for item in records:
        ok = (
            isinstance(item, dict)
            and set(item) == {"chain_id", "seq", "record_hash", "canonical"}
            and isinstance(item["chain_id"], str)
            and isinstance(item["seq"], int)
            and not isinstance(item["seq"], bool)
            and item["seq"] >= 1
            and isinstance(item["record_hash"], str)
            and len(item["record_hash"]) == 64
            and isinstance(item["canonical"], str)
        )
        if not ok:
            raise ApiError(400, "invalid_request", "each record needs exactly chain_id, seq, record_hash, canonical")
        if not chain_ids.is_valid(item["chain_id"]):
            raise ApiError(400, "invalid_chain_id", str(chain_ids.InvalidChainId(item["chain_id"])))
    for chain_id in sorted({item["chain_id"] for item in records}):
        if not caller.may_write(chain_id):
            raise ApiError(403, "forbidden", f"sidecar {caller.id} is not enrolled for chain {chain_id}")
    stored, duplicates, refusal = await ctx.audit.store.ingest(records)
    if refusal is not None:
        raise ApiError(
            409,
            refusal.reason,
            f"chain {refusal.chain_id} seq {refusal.seq}: {refusal.detail} (stored {stored} before it)",
        )
    return web.json_response({"stored": stored, "duplicates": duplicates})


def _params(request: web.Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in request.query.items():
        if key in out:
            raise ApiError(400, "invalid_request", f"parameter '{key}' is repeated")
        out[key] = value
    return out


async def audit_records(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    params = _params(request)
    allowed = _FILTERS | {"verify_chain", "full", "limit", "cursor"}
    unknown = set(params) - allowed
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    if params.get("verify_chain") == "true":
        report = await ctx.audit.verifier.verify(params.get("chain_id"), full=params.get("full") == "true")
        return web.json_response(report)
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise ApiError(400, "invalid_request", "limit must be 1 to 1000")
    after = None
    if "cursor" in params:
        chain, _, seq = params["cursor"].rpartition(":")
        if not chain or not seq.isdigit():
            raise ApiError(400, "invalid_request", "cursor is not one this API returned")
        after = (chain, int(seq))
    rows = await ctx.audit.store.query({k: v for k, v in params.items() if k in _FILTERS}, after, int(limit_text))
    body: dict[str, Any] = {"records": rows}
    if len(rows) == int(limit_text):
        body["next_cursor"] = f"{rows[-1]['chain_id']}:{rows[-1]['seq']}"
    return web.json_response(body)


async def export(request: web.Request) -> web.StreamResponse:
    """JSON Lines of a chain's stored records, for the offline verifier."""
    require_admin(request)
    ctx: Context = request.app["ctx"]
    chain_id = request.query.get("chain_id", "")
    records = await ctx.audit.store.chain_records(chain_id)
    if not records:
        raise ApiError(404, "not_found", "no such chain")
    lines = "".join(
        json.dumps(
            {"chain_id": r.chain_id, "seq": r.seq, "record_hash": r.record_hash, "canonical": r.canonical.decode()}
        )
        + "\n"
        for r in records
    )
    return web.Response(text=lines, content_type="application/x-ndjson")


async def checkpoint(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    chain_id = request.query.get("chain_id", "")
    latest = await ctx.audit.store.latest_checkpoint(chain_id)
    if latest is None:
        raise ApiError(404, "not_found", "no checkpoint for this chain yet")
    return web.Response(text=str(latest["note"]), content_type="text/plain")


async def checkpoint_key(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    return web.json_response({"verifier_key": ctx.audit.checkpointer.verifier_key, "algorithm": "Ed25519"})


def _int_param(params: dict[str, str], name: str) -> int:
    value = params.get(name, "")
    if not value.isdigit():
        raise ApiError(400, "invalid_request", f"{name} must be a positive integer")
    return int(value)


async def inclusion_proof(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    params = _params(request)
    chain_id, seq, size = params.get("chain_id", ""), _int_param(params, "seq"), _int_param(params, "tree_size")
    leaves = merkle.record_tree_leaves(await ctx.audit.store.record_hashes(chain_id, size))
    if not 1 <= seq <= size or len(leaves) < size:
        raise ApiError(400, "invalid_request", "need 1 <= seq <= tree_size <= chain length")
    return web.json_response(
        {
            "chain_id": chain_id,
            "leaf_index": seq - 1,
            "tree_size": size,
            "leaf_hash": leaves[seq - 1].hex(),
            "proof": [p.hex() for p in merkle.inclusion_proof(leaves, seq - 1)],
            "root_hash": merkle.root_from_leaf_hashes(leaves).hex(),
        }
    )


async def consistency_proof(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    params = _params(request)
    chain_id, first, second = params.get("chain_id", ""), _int_param(params, "first"), _int_param(params, "second")
    leaves = merkle.record_tree_leaves(await ctx.audit.store.record_hashes(chain_id, second))
    if not 1 <= first <= second or len(leaves) < second:
        raise ApiError(400, "invalid_request", "need 1 <= first <= second <= chain length")
    return web.json_response(
        {
            "chain_id": chain_id,
            "first": first,
            "second": second,
            "proof": [p.hex() for p in merkle.consistency_proof(leaves, first)],
            "first_root": merkle.root_from_leaf_hashes(leaves[:first]).hex(),
            "second_root": merkle.root_from_leaf_hashes(leaves).hex(),
        }
    )


async def alerts(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    return web.json_response({"alerts": await ctx.audit.store.alerts()})


async def prune(request: web.Request) -> web.Response:
    """Apply the retention policy now (it also runs daily); `{"before": RFC 3339}` may only cut earlier than it.

    The prune is an admin action: it is recorded in the control plane's own chain with what it cut.
    """
    require_admin(request)
    ctx: Context = request.app["ctx"]
    before = None
    if request.can_read_body:
        body = await json_object(request, 4096, {"before"})
        try:
            before = dt.datetime.fromisoformat(str(body["before"]).replace("Z", "+00:00")) if "before" in body else None
        except ValueError:
            raise ApiError(400, "invalid_request", "before must be an RFC 3339 timestamp") from None
        if before is not None and before.utcoffset() is None:
            raise ApiError(400, "invalid_request", "before must carry a time zone (e.g. Z)")
    days = ctx.config.audit.retention_days
    try:
        report = await retention.prune(ctx.audit.store, ctx.audit.checkpointer, days, before)
    except retention.RetentionRefused as exc:
        raise ApiError(400, "retention_violation", str(exc)) from None
    await ctx.store.add_event(
        "audit_pruned",
        time.time(),
        ip=client_ip(request),
        admin=True,
        resource="audit/retention",
        detail={
            "before": utc_timestamp(before) if before is not None else "",
            "retention_days": days,
            "chains": [{k: item[k] for k in ("chain_id", "pruned_through", "records_pruned")} for item in report],
        },
    )
    return web.json_response({"retention_days": days, "pruned": report})
