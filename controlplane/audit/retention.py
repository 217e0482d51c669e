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


class RetentionRefused(Exception):
    """A prune asked to cut records the retention policy still requires; nothing was pruned."""

    def __init__(self, requested: dt.datetime, earliest: dt.datetime, retention_days: int) -> None:
        super().__init__(
            f"before {utc_timestamp(requested)} is later than now minus the retention of {retention_days} days "
            f"(CORESDK_AUDIT_RETENTION_DAYS): give {utc_timestamp(earliest)} or earlier"
        )


def cutoff(retention_days: int, before: dt.datetime | None, now: dt.datetime | None = None) -> dt.datetime:
    """The moment records must be older than to be pruned: never later than now − retention.

    An earlier moment is allowed (prune less); a later one is refused, not clamped: the caller asked for records
    to disappear that the policy keeps, and a 200 for a prune that did less than it was told would mislead whoever
    relies on the answer.
    """
    floor = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    if before is None:
        return floor
    if before > floor:
        raise RetentionRefused(before, floor, retention_days)
    return before


async def prune(
    store: AuditStore, checkpointer: Checkpointer, retention_days: int, before: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Prune every chain up to cutoff(); raises RetentionRefused before touching anything."""
    limit = utc_timestamp(cutoff(retention_days, before))
    sinks = [s.name for s in checkpointer.sinks]
    report = []
    for chain_id, _ in await store.chains():
        if not chain_ids.is_valid(chain_id):  # never sealed: it could hold no checkpoint (see checkpoints.py)
            continue
        previous = await store.retention(chain_id)
        already = int(previous["pruned_through"]) if previous else 0
        through = await store.prunable_through(chain_id, limit, sinks)
        if through <= already:
            continue
        hashes = await store.record_hashes(chain_id, through)
        cp = Checkpoint(
            retention_origin(checkpointer, chain_id), through, root_from_leaf_hashes(record_tree_leaves(hashes))
        )
        note = checkpointer.sign(cp)
        count = await store.prune(chain_id, through, hashes[-1].hex(), note)
        report.append({"chain_id": chain_id, "pruned_through": through, "records_pruned": count, "cutoff": limit})
    return report
