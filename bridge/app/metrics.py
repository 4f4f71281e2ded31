"""``GET /metrics``: the Prometheus text exposition of a ``Metrics`` registry.

The store's gauges (queue depth, age of the oldest pending notification, dead deliveries,
disabled destinations) come from ``Store.queue_gauges()`` (index lookups, not whole-table
counts: a scrape costs the same on a store with a long history), which is async while
prometheus-client collects synchronously: each scrape first refreshes a cached snapshot, then
renders. A store
that does not answer keeps the last snapshot (and logs it) rather than failing the scrape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import structlog
from prometheus_client import Counter, Gauge
from starlette.requests import Request
from starlette.responses import Response

from bridge.errors import StoreUnavailable
from bridge.observability import Metrics
from bridge.pacing import Pacer
from bridge.store import Store

__all__ = ["MetricsEndpoint", "PacerCounters", "SnapshotReader", "store_snapshot"]

log = structlog.get_logger()

SNAPSHOT_TIMEOUT_S: Final = 2.0

SnapshotReader = Callable[[], Awaitable[Mapping[str, float]]]


async def store_snapshot(store: Store, now: Callable[[], float] = time.time) -> dict[str, float]:
    """The store-derived gauges of ``observability.SNAPSHOT_GAUGES``, read now."""
    gauges = await store.queue_gauges()
    oldest = gauges.oldest_pending_received_at
    return {
        "queue_depth": float(gauges.pending_notifications),
        "oldest_pending_age_seconds": 0.0 if oldest is None else max(0.0, now() - oldest),
        "dead_deliveries": float(gauges.dead_deliveries),
        "disabled_destinations": float(gauges.disabled_destinations),
    }


class PacerCounters:
    """Copies the pacer's running totals into counters; call it before each render."""

    def __init__(self, metrics: Metrics, pacer: Pacer) -> None:
        self._metrics = metrics
        self._pacer = pacer
        self._waits = Counter(
            "bridge_pacer_waits", "Imports that had to wait for the quota pacer.",
            registry=metrics.registry,
        )  # fmt: skip
        self._seen_waits = 0
        self._seen_seconds = 0.0

    def __call__(self) -> None:
        waits, seconds = self._pacer.waits_total, self._pacer.wait_seconds_total
        if waits > self._seen_waits:
            self._waits.inc(waits - self._seen_waits)
            self._seen_waits = waits
        if seconds > self._seen_seconds:
            self._metrics.pacer_wait_seconds.inc(seconds - self._seen_seconds)
            self._seen_seconds = seconds


class MetricsEndpoint:
    """``GET /metrics``: refresh the snapshot and the ``before_render`` hooks, then render."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        snapshot: SnapshotReader,
        before_render: Sequence[Callable[[], None]] = (),
        readiness: Callable[[], Awaitable[bool]] | None = None,
        timeout_s: float = SNAPSHOT_TIMEOUT_S,
    ) -> None:
        self._metrics = metrics
        self._snapshot = snapshot
        self._before_render = tuple(before_render)
        self._timeout_s = timeout_s
        self._cached: Mapping[str, float] = {}
        metrics.set_snapshot_source(lambda: self._cached)
        self._readiness = readiness
        # What /readyz answers, as a series: a Prometheus without a prober can alert on it.
        self._ready = None if readiness is None else Gauge(
            "bridge_ready", "1 while /readyz answers 200 (store, config, workers), else 0.",
            registry=metrics.registry,
        )  # fmt: skip

    async def refresh(self) -> None:
        """Read the store's gauges now; keep the previous values if the store fails."""
        try:
            self._cached = await asyncio.wait_for(self._snapshot(), self._timeout_s)
        except (StoreUnavailable, TimeoutError):
            log.warning("metrics_snapshot_failed")
        if self._readiness is not None and self._ready is not None:
            self._ready.set(1.0 if await self._readiness() else 0.0)
        for hook in self._before_render:
            hook()

    async def scrape(self, request: Request) -> Response:
        await self.refresh()
        body, content_type = self._metrics.render()
        return Response(body, 200, headers={"content-type": content_type})
