"""``GET /metrics``: the Prometheus text exposition of a ``Metrics`` registry.

The store's gauges (queue depth, age of the oldest pending notification, dead deliveries,
disabled destinations) come from ``Store.stats()``, which is async while prometheus-client
collects synchronously: each scrape first refreshes a cached snapshot, then renders. A store
that does not answer keeps the last snapshot (and logs it) rather than failing the scrape.
"""

from __future__ import annotations

import asyncio
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


async def store_snapshot(store: Store) -> dict[str, float]:
    """The store-derived gauges of ``observability.SNAPSHOT_GAUGES``, read now."""
    stats = await store.stats()
    states = await store.destination_states()
    return {
        "queue_depth": float(stats.notifications.get("pending", 0)),
        "oldest_pending_age_seconds": stats.oldest_pending_age_s or 0.0,
        "dead_deliveries": float(stats.deliveries.get("dead", 0)),
        "disabled_destinations": float(sum(not state.enabled for state in states)),
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
