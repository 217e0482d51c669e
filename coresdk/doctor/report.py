"""Running the checklist and presenting it: a table for people, JSON for CI, exit status 1 on any FAIL."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TextIO

from coresdk.doctor import credentials, entitlements, identity, network, operations, replicas, seams, secrets
from coresdk.doctor.model import Check, Context, Result, Status

CHECKS: list[Check] = [
    *network.CHECKS,
    *identity.CHECKS,
    *credentials.CHECKS,
    *secrets.CHECKS,
    *operations.CHECKS,
    *entitlements.CHECKS,
    *seams.CHECKS,
    *replicas.CHECKS,
]


def run_checks(ctx: Context, only: Iterable[str] = ()) -> list[Result]:
    wanted = set(only)
    return [check(ctx) for check in CHECKS if not wanted or check.id in wanted]


def exit_status(results: list[Result]) -> int:
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def render_table(results: list[Result], out: TextIO = sys.stdout) -> None:
    width = max(len(r.id) for r in results)
    for r in results:
        print(f"{r.status.value:<4}  {r.id:<{width}}  {r.title}", file=out)
        print(f"      {'':<{width}}  {r.detail}", file=out)
        if r.remediation and r.status is not Status.PASS:
            print(f"      {'':<{width}}  fix: {r.remediation}", file=out)
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    summary = ", ".join(f"{counts[s]} {s.value}" for s in Status if counts[s])
    print(f"\n{summary}", file=out)


def render_json(results: list[Result], out: TextIO = sys.stdout) -> None:
    doc = {
        "ok": exit_status(results) == 0,
        "checks": [
            {"id": r.id, "title": r.title, "status": r.status.value, "detail": r.detail, "remediation": r.remediation}
            for r in results
        ],
    }
    json.dump(doc, out, indent=2)
    out.write("\n")
