"""History retention: ``serve`` deletes final notifications older than ``store.retention_days``
with every row of theirs (``Store.delete_history``), a bounded batch per transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from bridge.errors import StoreUnavailable
from bridge.observability import Metrics
from bridge.store import Store

log = structlog.get_logger()

DAY_S = 86_400.0
#: Notifications per transaction: intake's writes go in between two batches, never behind a
#: whole backlog of history.
HISTORY_BATCH = 500
SWEEP_INTERVAL_MAX_S = 60.0
SWEEP_INTERVAL_MIN_S = 1.0


def sweep_interval_s(retention_days: float | None) -> float:
    """A quarter of the retention (history outlives it by at most that), within 1 to 60 s."""
    if retention_days is None:
        return SWEEP_INTERVAL_MAX_S
    quarter = retention_days * DAY_S / 4
    return min(SWEEP_INTERVAL_MAX_S, max(SWEEP_INTERVAL_MIN_S, quarter))


async def delete_old_history(
    store: Store, *, retention_days: float, metrics: Metrics, batch: int = HISTORY_BATCH
) -> int:
    """Delete every notification past the retention, ``batch`` per transaction; how many."""
    total = 0
    while True:
        deleted = await store.delete_history(older_than_s=retention_days * DAY_S, limit=batch)
        total += deleted
        metrics.history_deletions.inc(deleted)
        if deleted < batch:
            break
        await asyncio.sleep(0)  # the next batch queues behind the writes waiting now
    if total:
        log.info("history_deleted", notifications=total, retention_days=retention_days)
    return total


async def sweep_history(
    store: Store, *, retention_days: Callable[[], float | None], metrics: Metrics
) -> None:
    """Run ``delete_old_history`` periodically, with the retention the running configuration
    has at each sweep (a reload changes it); none while it is unset."""
    while True:
        await asyncio.sleep(sweep_interval_s(retention_days()))
        days = retention_days()
        if days is None:
            continue
        try:
            await delete_old_history(store, retention_days=days, metrics=metrics)
        except StoreUnavailable:
            log.warning("history_sweep_failed")
