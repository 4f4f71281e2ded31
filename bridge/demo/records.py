"""What the running bridge has recorded, read through its admin API as an operator would (the
demo never opens the server's store itself)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import httpx

from bridge.demo.verdict import DeliveryRecord, Recorded
from bridge.types import NotificationStatus

PAGE = 500  # the admin API's largest page
ADMIN = "/admin/v1"


async def listing(admin: httpx.AsyncClient) -> dict[str, Recorded]:
    """Every notification's status, reason and destinations, page by page."""
    found: dict[str, Recorded] = {}
    before: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": PAGE}
        if before is not None:
            params["before"] = before
        page = await _get(admin, f"{ADMIN}/notifications", params)
        for row in page["items"]:
            found[row["id"]] = _recorded(row)
        before = page["next"]
        if before is None:
            return found


async def with_timelines(admin: httpx.AsyncClient, ids: Collection[str]) -> dict[str, Recorded]:
    """The notifications ``ids`` with their events, deliveries and reconciliations."""
    found: dict[str, Recorded] = {}
    for notification_id in ids:
        answer = await admin.get(f"{ADMIN}/notifications/{notification_id}")
        if answer.status_code == 404:
            continue
        answer.raise_for_status()
        timeline = answer.json()
        deliveries = {
            (delivery["event"]["id"], delivery["destination"]): DeliveryRecord(
                delivery["status"], delivery["attempts"]
            )
            for delivery in timeline["deliveries"]
        }
        found[notification_id] = _recorded(
            timeline["notification"],
            event_ids=tuple(event["id"] for event in timeline["events"]),
            deliveries=deliveries,
            reconciles=sum(a["kind"] == "reconcile" for a in timeline["attempts"]),
            event_times={e["id"]: _epoch_s(e["created_at"]) for e in timeline["events"]},
        )
    return found


async def pending_deliveries(admin: httpx.AsyncClient) -> int:
    """Deliveries still waiting, over every destination."""
    destinations = await _get(admin, f"{ADMIN}/destinations", {})
    return sum(int(row["pending"]) for row in destinations["items"])


async def _get(admin: httpx.AsyncClient, path: str, params: Mapping[str, Any]) -> Any:
    answer = await admin.get(path, params=params)
    answer.raise_for_status()
    return answer.json()


def _recorded(
    row: Mapping[str, Any],
    *,
    event_ids: tuple[str, ...] = (),
    deliveries: dict[tuple[str, str], DeliveryRecord] | None = None,
    reconciles: int = 0,
    event_times: dict[str, float] | None = None,
) -> Recorded:
    reason = row["reason"]
    return Recorded(
        partner=row["partner"],
        status=NotificationStatus(row["status"]),
        reason=None if reason is None else reason["code"],
        destinations=tuple(row["route"]["destinations"]),
        event_ids=event_ids,
        deliveries=deliveries,
        reconciles=reconciles,
        event_times=event_times or {},
    )


def _epoch_s(iso: str) -> float:
    """Epoch seconds of the admin API's ``2026-11-25T10:00:00.000Z``."""
    return datetime.fromisoformat(iso).timestamp()
