"""Token events: a row of token_events and a record of the control plane's own audit chain, written together.

The recorder works inside the caller's transaction, so an event can never be committed without the change it
describes (or the change without its event). The chain's metadata goes through the masking detectors, like every
record a sidecar appends: a username typed into the sign-in form may be an e-mail address, and it must not be
hashed into the chain as typed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from controlplane.store.audit import AUDIT_INSERT, own_rows
from controlplane.store.db import Database, Tx, insert_many
from controlplane.store.models import OAuthApp, TokenEvent
from coresdk.masking.engine import Masker

_MASKER = Masker(None)  # detectors and the default (replace) policy: no key needed, nothing reversible
ALERT_EVENTS = frozenset({"refresh_replay", "code_replay", "login_failed"})


@dataclass(frozen=True)
class Event:
    """One token event: a token_events row and the chain record that says the same."""

    type: str
    now: float
    client_id: str = ""
    subject: str = ""
    family_id: str = ""
    ip: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    admin: bool = False  # an action taken with the admin token (actor "admin")
    resource: str = ""
    # detail keys whose values the control plane made itself (a jti it drew, a grant type from its fixed list):
    # they cannot hold personal data, so they skip the detectors and go into the chain as they are
    generated: frozenset[str] = frozenset()

    def chain_fields(self) -> dict[str, Any]:
        given = {"subject": self.subject, **{k: v for k, v in self.detail.items() if k not in self.generated}}
        metadata = {**_masked(given), **{k: v for k, v in self.detail.items() if k in self.generated}}
        return {
            "actor": "admin" if self.admin else self.client_id or "controlplane",
            "action": f"admin.{self.type}" if self.admin else f"token.{self.type}",
            "resource": self.resource or (f"family/{self.family_id}" if self.family_id else f"client/{self.client_id}"),
            "outcome": "alert" if self.type in ALERT_EVENTS else "success",
            "ip": self.ip,
            "reason": str(self.detail.get("reason", "")),
            "metadata": metadata,
        }

    def row(self) -> tuple[Any, ...]:
        detail = json.dumps(self.detail, sort_keys=True)
        return (self.type, self.client_id, self.subject, self.family_id, self.ip, detail, self.now)


def _masked(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata through the detectors; flat string metadata (the hot path's) from a bounded memo, because the
    same subject recurs on every grant of a client and the detectors' answer depends on the value alone."""
    if all(isinstance(v, str) for v in metadata.values()):
        return dict(_masked_strings(tuple(sorted(metadata.items()))))
    masked, _ = _MASKER.mask_json(metadata)
    return dict(masked)


@functools.lru_cache(maxsize=4096)
def _masked_strings(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Any], ...]:
    masked, _ = _MASKER.mask_json(dict(items))
    return tuple(masked.items())


_INSERT_EVENT = "INSERT INTO token_events (type, client_id, subject, family_id, ip, detail, created_at)"


async def event_inserts(tx: Tx, events: list[Event]) -> list[tuple[str, Sequence[Sequence[Any]]]]:
    """The inserts that record `events` in tx (for db.insert_many): their chain records, sealed after the head
    (read once, the chain locked until tx ends), and their token_events rows."""
    return [
        (AUDIT_INSERT, await own_rows(tx, [e.chain_fields() for e in events])),
        (_INSERT_EVENT, [e.row() for e in events]),
    ]


async def record_events(tx: Tx, events: list[Event]) -> None:
    """Events in tx, in order: chained together (one head lookup) and inserted (one statement on PostgreSQL)."""
    await insert_many(tx, await event_inserts(tx, events))


async def record_event(tx: Tx, type_: str, now: float, **fields: Any) -> None:
    """One token event in tx (fields as Event's); admin=True marks an action taken with the admin token."""
    detail = fields.pop("detail", None) or {}
    await record_events(tx, [Event(type_, now, detail=detail, **fields)])


class EventRecorder(Protocol):
    """Events written in the current transaction."""

    async def record(self, type_: str, now: float, **fields: Any) -> None: ...
    async def app_event(self, type_: str, app: OAuthApp, now: float, ip: str, detail: dict[str, Any]) -> None: ...


class SqlEventRecorder:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def record(self, type_: str, now: float, **fields: Any) -> None:
        await record_event(self._tx, type_, now, **fields)

    async def app_event(self, type_: str, app: OAuthApp, now: float, ip: str, detail: dict[str, Any]) -> None:
        """An admin action on an app (created, updated, scopes narrowed, secret rotated, deleted)."""
        await record_event(
            self._tx,
            type_,
            now,
            client_id=app.client_id,
            ip=ip,
            admin=True,
            resource=f"app/{app.client_id}",
            detail=detail,
        )


class EventQueries(Protocol):
    async def list_events(
        self, type_: str | None, client_id: str | None, since: float | None, until: float | None, limit: int
    ) -> list[TokenEvent]: ...


class SqlEventQueries:
    """Reading the event log (the admin API's token-events listing)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_events(
        self, type_: str | None, client_id: str | None, since: float | None, until: float | None, limit: int
    ) -> list[TokenEvent]:
        clauses, args = [], []
        for column, op, value in (
            ("type", "=", type_),
            ("client_id", "=", client_id),
            ("created_at", ">=", since),
            ("created_at", "<", until),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} {op} ${len(args)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(limit)
        async with self._db.transaction() as tx:
            rows = await tx.fetch(f"SELECT * FROM token_events {where} ORDER BY id LIMIT ${len(args)}", *args)  # noqa: S608
        return [TokenEvent.from_row(r) for r in rows]
