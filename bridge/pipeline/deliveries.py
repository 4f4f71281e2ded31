"""The deliver job: send one event to one destination, at least once (docs/events.md).

One run of :class:`DeliverHandler` for a pending delivery:

1. The destination must be configured; if it is not (a config change), the job waits and
   comes back later (released, attempt refunded: no retry step spent), never dropped.
2. A destination's ``max_in_flight`` is kept by the claim: the worker hands the store every
   destination's cap (:meth:`lane_caps`), and the store leases a destination's job only while
   fewer than its cap of its jobs are leased, by any process on the store. A slow destination
   holds only its own slots, never another's.
3. Wait for the destination's rate (``rate_limit_per_second``: on a store shared by several
   processes, counted in the store for all of them), POST, and record the attempt with what
   followed, in one store transaction:

   - delivered: ``mark_delivered``;
   - failed: retry after the next step of the destination's ``retry_schedule`` (±20 %
     jitter), or after the ``Retry-After`` a 429/503 asked for when that is later; past the
     schedule: ``dead``;
   - ``webhook-delivery: abort-message``: ``dead`` at once;
   - 410: the destination is disabled (an alert is logged and counted) and the delivery waits
     for ``bridge destinations enable``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping

import structlog

from bridge.config import Destination, Settings
from bridge.delivery import DeliveryResult, Sender, Verdict
from bridge.observability import Metrics
from bridge.pipeline._timing import SharedRate, TokenBucket
from bridge.store import AttemptReport, DeliveryStatus, Job, Store
from bridge.tracing import NO_TRACING, Tracing
from bridge.types import Complete, Done, JobResult, Release

__all__ = [
    "JITTER",
    "MAX_DELIVERY_CONCURRENCY",
    "UNCONFIGURED_RETRY_S",
    "DeliverHandler",
    "delivery_concurrency",
]

log = structlog.get_logger()

JITTER = 0.2  # each scheduled wait is drawn from [0.8, 1.2] x the schedule's step
UNCONFIGURED_RETRY_S = 60.0  # a delivery whose destination left the config is asked again
MAX_DELIVERY_CONCURRENCY = 256


def delivery_concurrency(settings: Settings) -> int:
    """The deliver worker's slots: every destination's ``max_in_flight``, within bounds."""
    total = sum(destination.max_in_flight for destination in settings.destinations.values())
    return min(max(total, 1), MAX_DELIVERY_CONCURRENCY)


class DeliverHandler:
    """The worker's handler for ``deliver`` jobs; give the worker :meth:`lane_caps`.

    ``settings`` is read at each job (a reloaded config applies at once). ``retry_scheduled``
    is told each retry time, so the worker can wake then rather than at its next poll.
    ``unconfigured_retry_s``: how soon a delivery whose destination is missing is tried again.
    """

    def __init__(
        self,
        *,
        store: Store,
        sender: Sender,
        settings: Callable[[], Settings],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        retry_scheduled: Callable[[float], None] = lambda _at: None,
        unconfigured_retry_s: float = UNCONFIGURED_RETRY_S,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._store = store
        self._sender = sender
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self._metrics = metrics
        self._retry_scheduled = retry_scheduled
        self._unconfigured_retry_s = unconfigured_retry_s
        self._tracing = tracing
        self._shared = store.shared_quota()
        self._rates: dict[str, TokenBucket | SharedRate] = {}

    def lane_caps(self) -> Mapping[str, int]:
        """Each configured destination's ``max_in_flight``, for the claim."""
        destinations = self._settings().destinations
        return {name: destination.max_in_flight for name, destination in destinations.items()}

    async def __call__(self, job: Job) -> JobResult:
        delivery = await self._store.load_delivery(job.ref)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return Complete()
        name = delivery.destination
        structlog.contextvars.bind_contextvars(
            delivery_id=delivery.id, destination=name, event_id=delivery.event.id
        )
        destination = self._settings().destinations.get(name)
        if destination is None:
            # Nothing was sent: waiting for the config to name it again costs no retry step.
            log.warning("destination_not_configured")
            return Release(delay_s=self._unconfigured_retry_s)
        with self._tracing.job(
            "delivery",
            delivery.trace_context,
            notification_id=delivery.event.notification_id,
            partner=delivery.partner,
            rule=delivery.rule,
            delivery_id=delivery.id,
            event_id=delivery.event.id,
            destination=name,
            job_attempt=job.attempts,
        ) as span:
            await self._rate(name, destination).acquire()
            traceparent = span.traceparent()
            result = await self._sender.send(
                name,
                destination,
                message_id=delivery.event.id,
                body=delivery.event.body,
                headers=None if traceparent is None else {"traceparent": traceparent},
            )
            span.set(outcome=result.verdict.value, http_status=result.http_status)
            if self._metrics is not None:
                verdict = result.verdict.value
                self._metrics.deliveries.labels(destination=name, result=verdict).inc()
            held = await self._record(job, name, destination, result)
        if not held:
            log.warning("delivery_lease_lost")
        return Done()

    async def _record(
        self, job: Job, name: str, destination: Destination, result: DeliveryResult
    ) -> bool:
        report = AttemptReport(
            http_status=result.http_status,
            latency_ms=result.latency_ms,
            response_excerpt=result.response_excerpt,
            error=result.error,
        )
        answer = {"http_status": result.http_status, "latency_ms": result.latency_ms}
        if result.verdict is Verdict.DELIVERED:
            log.info("delivered", **answer)
            return await self._store.mark_delivered(job, report)
        if result.verdict is Verdict.DISABLE:
            await self._disable(name, result)
            return await self._store.delivery_failed(job, report, retry_at=self._clock())
        retry_at = self._retry_at(job, destination, result)
        log.info(
            "delivery_failed" if retry_at is not None else "delivery_dead",
            error=result.error,
            retry_in_s=None if retry_at is None else round(retry_at - self._clock(), 3),
            **answer,
        )
        held = await self._store.delivery_failed(job, report, retry_at=retry_at)
        if held and retry_at is not None:
            self._retry_scheduled(retry_at)
        return held

    def _retry_at(self, job: Job, destination: Destination, result: DeliveryResult) -> float | None:
        """When to try again, or None: dead (aborted, or past the schedule)."""
        schedule = destination.retry_delays_s
        if result.verdict is Verdict.ABORT or job.attempts > len(schedule):
            return None
        step = schedule[job.attempts - 1] * self._rng.uniform(1.0 - JITTER, 1.0 + JITTER)
        if result.verdict is Verdict.RETRY_AFTER and result.retry_after_s is not None:
            # Never sooner than asked, nor sooner than the schedule's step: each answer takes a
            # step, and a "Retry-After: 1" must not run a 28-hour schedule out in seconds.
            step = max(step, result.retry_after_s)
        return self._clock() + step

    async def _disable(self, name: str, result: DeliveryResult) -> None:
        reason = result.error or "HTTP 410"
        await self._store.set_destination_enabled(name, enabled=False, reason=reason)
        log.error("destination_disabled", destination=name, reason=reason)
        if self._metrics is not None:
            self._metrics.alerts.labels(kind="destination_disabled").inc()

    def _rate(self, name: str, destination: Destination) -> TokenBucket | SharedRate:
        """The destination's rate: this process's own, or the one every process on the store
        shares."""
        rate = self._rates.get(name)
        per_second = destination.rate_limit_per_second
        if rate is None or rate.rate != per_second:
            rate = self._rates[name] = (
                TokenBucket(per_second)
                if self._shared is None
                else SharedRate(per_second, quota=self._shared, key=f"destination:{name}")
            )
        return rate
