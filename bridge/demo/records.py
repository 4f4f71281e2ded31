"""What the running bridge has recorded, read from its store (SQLite in WAL mode lets this
process read while ``share-bridge serve`` writes)."""

from __future__ import annotations

from collections.abc import Collection

from bridge.demo.verdict import DeliveryRecord, Recorded
from bridge.store import AttemptKind, Notification, Store

LISTING_LIMIT = 1_000_000  # the demo's store holds only this run's few hundred notifications


async def listing(store: Store) -> dict[str, Recorded]:
    """Every notification's status, reason and destinations (cheap: one query)."""
    rows = await store.list_notifications(limit=LISTING_LIMIT)
    return {row.id: _recorded(row) for row in rows}


async def with_timelines(store: Store, ids: Collection[str]) -> dict[str, Recorded]:
    """The notifications ``ids`` with their events, deliveries and reconciliations."""
    found: dict[str, Recorded] = {}
    for notification_id in ids:
        timeline = await store.timeline(notification_id)
        if timeline is None:
            continue
        deliveries = {
            (delivery.event.id, delivery.destination): DeliveryRecord(
                delivery.status.value, delivery.attempts
            )
            for delivery in timeline.deliveries
        }
        found[notification_id] = _recorded(
            timeline.notification,
            event_ids=tuple(event.id for event in timeline.events),
            deliveries=deliveries,
            reconciles=sum(a.kind is AttemptKind.RECONCILE for a in timeline.attempts),
            event_times={event.id: event.created_at for event in timeline.events},
        )
    return found


def _recorded(
    row: Notification,
    *,
    event_ids: tuple[str, ...] = (),
    deliveries: dict[tuple[str, str], DeliveryRecord] | None = None,
    reconciles: int = 0,
    event_times: dict[str, float] | None = None,
) -> Recorded:
    return Recorded(
        partner=row.partner,
        status=row.status,
        reason=row.reason.code if row.reason else None,
        destinations=row.route.destinations,
        event_ids=event_ids,
        deliveries=deliveries,
        reconciles=reconciles,
        event_times=event_times or {},
    )
