"""Retention: records older than the policy are pruned, their range sealed by a signed retention checkpoint.

Only a prefix of a chain is ever pruned, and only what every off-box sink has received. The record hashes stay, so
later checkpoints still re-prove; verification starts after the pruned range from the sealed last hash, once the
retention checkpoint's signature and Merkle root over the pruned range check out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.audit.checkpoints import Checkpointer
from controlplane.store.audit import AuditStore
from coresdk.audit import chain_id as chain_ids
from coresdk.audit.checkpoint import RETENTION, Checkpoint
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes
from coresdk.audit.record import utc_timestamp


def retention_origin(checkpointer: Checkpointer, chain_id: str) -> str:
    return checkpointer.origin(chain_id, RETENTION)


async def prune(
    store: AuditStore, checkpointer: Checkpointer, retention_days: int, before: dt.datetime | None = None
) -> list[dict[str, Any]]:
    cutoff = utc_timestamp(before or dt.datetime.now(dt.UTC) - dt.timedelta(days=retention_days))
    sinks = [s.name for s in checkpointer.sinks]
    report = []
    for chain_id, _ in await store.chains():
        if not chain_ids.is_valid(chain_id):  # never sealed: it could hold no checkpoint (see checkpoints.py)
            continue
        previous = await store.retention(chain_id)
        already = int(previous["pruned_through"]) if previous else 0
        through = await store.prunable_through(chain_id, cutoff, sinks)
        if through <= already:
            continue
        hashes = await store.record_hashes(chain_id, through)
        cp = Checkpoint(
            retention_origin(checkpointer, chain_id), through, root_from_leaf_hashes(record_tree_leaves(hashes))
        )
        note = checkpointer.sign(cp)
        count = await store.prune(chain_id, through, hashes[-1].hex(), note)
        report.append({"chain_id": chain_id, "pruned_through": through, "records_pruned": count, "cutoff": cutoff})
    return report
