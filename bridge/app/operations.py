"""What an operator can see and do, written once for the admin API, the console and the CLI.

Each of the three only translates: HTTP query parameters, a form or command-line arguments in,
JSON, HTML or lines of text out. The queries, the checks before an action (is the destination
known, may this delivery be sent again) and what follows it (a log line, waking a worker) live
here, so the three cannot drift apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

import structlog

from bridge.app import retrying
from bridge.app.retrying import RETRY_REFUSALS
from bridge.config import Rule
from bridge.errors import ConfigIssue
from bridge.store import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationSearch,
    RetryResult,
    Store,
    Timeline,
)
from bridge.types import NotificationStatus

__all__ = [
    "REDELIVERABLE",
    "RETRY_REFUSALS",
    "DestinationTotals",
    "DestinationView",
    "Operations",
    "OperatorSettings",
    "OutcomeChart",
    "Overview",
    "Page",
    "QuotaUse",
    "RedeliverResult",
    "Reloader",
]

log = structlog.get_logger()

T = TypeVar("T")

Reloader = Callable[[], Sequence[ConfigIssue]]
"""Re-read the configuration; the issues that refused it (empty when it was applied)."""

#: Only a delivery that is no longer on its way can be sent again.
REDELIVERABLE: Final = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.DEAD})


class RedeliverResult(StrEnum):
    REQUEUED = "requeued"
    NOT_FOUND = "not_found"
    ALREADY_PENDING = "already_pending"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing, newest first; ``next`` is the ``before`` of the following page."""

    items: list[T]
    next: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationView:
    """A destination as operators see it: configured, known to the store, or both."""

    name: str
    configured: bool
    enabled: bool
    changed_at: float | None
    reason: str | None
    pending: int
    dead: int
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DestinationTotals:
    destination: str
    delivered: int
    pending: int
    dead: int

    @property
    def success_rate(self) -> float | None:
        """Delivered among the deliveries that are done (delivered or dead); None when none."""
        done = self.delivered + self.dead
        return None if done == 0 else self.delivered / done


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeChart:
    """Final outcomes per bucket, oldest bucket first: ``counts[status][bucket]``."""

    since: float
    bucket_s: float
    counts: Mapping[NotificationStatus, list[int]]

    @property
    def totals(self) -> dict[NotificationStatus, int]:
        return {status: sum(row) for status, row in self.counts.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaUse:
    """The Didit write quota as the pacer sees it."""

    limit_per_minute: int
    budget_per_minute: int  # the configured limit, or Didit's when lower
    paused_until: float | None  # a 429 pause
    waits: int  # imports that had to wait for the pacer


@dataclass(frozen=True, slots=True, kw_only=True)
class Overview:
    at: float
    pending: int
    import_queue: int  # import jobs queued or running
    oldest_pending_age_s: float | None
    last_hour: OutcomeChart
    last_day: OutcomeChart
    deliveries: list[DestinationTotals]
    quota: QuotaUse | None
    alerts: Mapping[str, int] = field(default_factory=dict)


class OperatorSettings(Protocol):
    """What operations read of the configuration: ``Settings`` in ``serve``; the CLI's
    commands, which need no secret, read only these."""

    @property
    def destinations(self) -> Collection[str]: ...  # the configured destinations' names

    @property
    def rules(self) -> Sequence[Rule]: ...  # a retry routes with the running rules


class _ActionLog(Protocol):
    def info(self, event: str, **fields: Any) -> Any: ...


class _Quiet:
    def info(self, event: str, **fields: Any) -> None:
        return None


_SETTLED_POLL_S: Final = 0.2

#: How long the overview's chart of the last day is reused before it is counted again.
DAY_CHART_TTL_S: Final = 60.0

_FINAL: Final = tuple(s for s in NotificationStatus if s is not NotificationStatus.PENDING)


class Operations:
    """The operator's queries and actions over one store and the live configuration.

    ``on_retry`` and ``on_redeliver`` wake the workers of a running ``serve`` (the CLI, which
    runs beside one, leaves them to poll); ``quota`` and ``alerts`` read the running process.
    """

    def __init__(
        self,
        *,
        store: Store,
        settings: Callable[[], OperatorSettings],
        reload: Reloader | None = None,
        on_retry: Callable[[], None] = lambda: None,
        on_redeliver: Callable[[], None] = lambda: None,
        quota: Callable[[], QuotaUse] | None = None,
        alerts: Callable[[], Mapping[str, int]] = dict,
        clock: Callable[[], float] = time.time,
        log_actions: bool = True,
    ) -> None:
        self._store = store
        self._settings = settings
        self._reload = reload
        self._on_retry = on_retry
        self._on_redeliver = on_redeliver
        self._quota = quota
        self._alerts = alerts
        self._clock = clock
        self._day_chart: tuple[float, OutcomeChart] | None = None
        # The CLI prints its own line for each action, on stdout, where a log line would mix in.
        self._log: _ActionLog = log if log_actions else _Quiet()

    @property
    def can_reload(self) -> bool:
        return self._reload is not None

    # -- notifications --------------------------------------------------------------------

    async def notifications(
        self, search: NotificationSearch, *, limit: int, before: str | None = None
    ) -> Page[Notification]:
        rows = await self._store.search_notifications(search, limit=limit + 1, before=before)
        return _page(rows, limit)

    async def timeline(self, notification_id: str) -> Timeline | None:
        return await self._store.timeline(notification_id)

    async def settled(self, notification_id: str, *, wait_s: float) -> Timeline | None:
        """The timeline, once the notification is final and no delivery of it is pending, or
        as it is when ``wait_s`` has passed."""
        deadline = time.monotonic() + wait_s
        while True:
            timeline = await self._store.timeline(notification_id)
            if timeline is None or time.monotonic() >= deadline:
                return timeline
            final = timeline.notification.status is not NotificationStatus.PENDING
            if final and all(d.status is not DeliveryStatus.PENDING for d in timeline.deliveries):
                return timeline
            await asyncio.sleep(_SETTLED_POLL_S)

    def retry_refusal(self, notification: Notification) -> str | None:
        """Why ``retry`` would refuse this notification, as far as its row tells (None: it may
        be retried; ``retry`` itself still decides, with the token and newer shares in view)."""
        if notification.status is not NotificationStatus.FAILED:
            return RETRY_REFUSALS[RetryResult.NOT_RETRYABLE]
        deadline = notification.deadline
        if deadline is not None and deadline <= self._clock():
            return RETRY_REFUSALS[RetryResult.TOKEN_GONE]
        return None

    async def retry(self, notification_id: str, *, keep_route: bool = False) -> RetryResult:
        """Requeue a failed notification, re-routed by the running rules unless
        ``keep_route`` (``retrying.retry``)."""
        result = await retrying.retry(
            self._store, notification_id, self._settings().rules, keep_route=keep_route
        )
        self._log.info("admin_retry", notification_id=notification_id, result=result.value)
        if result is RetryResult.REQUEUED:
            self._on_retry()
        return result

    # -- destinations and deliveries ------------------------------------------------------

    async def destinations(self) -> list[DestinationView]:
        """Every configured destination and every one the store knows, by name.

        A configured destination without stored state is enabled with no backlog; a stored
        one no longer configured still shows (its deliveries wait), ``configured=False``.
        """
        by_name = {state.name: state for state in await self._store.destination_states()}
        configured = set(self._settings().destinations)
        views = []
        for name in sorted(set(by_name) | set(configured)):
            state = by_name.get(name)
            views.append(
                DestinationView(
                    name=name,
                    configured=name in configured,
                    enabled=True if state is None else state.enabled,
                    changed_at=None if state is None else state.changed_at,
                    reason=None if state is None else state.reason,
                    pending=0 if state is None else state.pending,
                    dead=0 if state is None else state.dead,
                    last_error=None if state is None else state.last_error,
                )
            )
        return views

    async def known_destination(self, name: str) -> bool:
        if name in self._settings().destinations:
            return True
        return any(state.name == name for state in await self._store.destination_states())

    async def set_enabled(self, name: str, *, enabled: bool, reason: str | None) -> bool:
        """Enable or disable a destination; False (nothing done) when no such destination."""
        if not await self.known_destination(name):
            return False
        await self._store.set_destination_enabled(name, enabled=enabled, reason=reason)
        self._log.info(
            "destination_enabled" if enabled else "destination_disabled", destination=name
        )
        if enabled:
            self._on_redeliver()
        return True

    async def recover(
        self, name: str, *, since: float, status: DeliveryStatus | None = None
    ) -> int | None:
        """Send again a destination's deliveries done since ``since``: how many; None when no
        such destination."""
        if not await self.known_destination(name):
            return None
        count = await self._store.redeliver_since(name, since=since, status=status)
        self._log.info("destination_recovered", destination=name, requeued=count)
        if count:
            self._on_redeliver()
        return count

    async def deliveries(
        self,
        *,
        status: DeliveryStatus | None,
        destination: str | None,
        limit: int,
        before: str | None = None,
    ) -> Page[Delivery]:
        rows = await self._store.list_deliveries(
            status=status, destination=destination, limit=limit + 1, before=before
        )
        return _page(rows, limit)

    async def redeliver(self, delivery_id: str) -> RedeliverResult:
        delivery = await self._store.load_delivery(delivery_id)
        if delivery is None:
            return RedeliverResult.NOT_FOUND
        if delivery.status not in REDELIVERABLE or not await self._store.redeliver(delivery_id):
            return RedeliverResult.ALREADY_PENDING
        self._log.info(
            "delivery_requeued", delivery_id=delivery_id, destination=delivery.destination
        )
        self._on_redeliver()
        return RedeliverResult.REQUEUED

    async def count_deliveries(
        self, *, status: DeliveryStatus | None, destination: str | None
    ) -> int:
        return await self._store.count_deliveries(status=status, destination=destination)

    async def redeliver_matching(self, *, status: DeliveryStatus, destination: str | None) -> int:
        """Send again every delivered or dead delivery of ``status`` (to ``destination``, or to
        every destination): how many were queued."""
        if status not in REDELIVERABLE:
            return 0
        if destination is not None:
            names = [destination]
        else:
            names = [view.name for view in await self.destinations()]
        count = 0
        for name in names:
            count += await self._store.redeliver_since(name, since=0.0, status=status)
        self._log.info(
            "deliveries_requeued", destination=destination, status=status, requeued=count
        )
        if count:
            self._on_redeliver()
        return count

    # -- configuration --------------------------------------------------------------------

    def reload(self) -> Sequence[ConfigIssue] | None:
        """Re-read the configuration: its issues (empty when applied); None when this process
        was not started from a file it can read again."""
        if self._reload is None:
            return None
        return self._reload()

    # -- the overview ---------------------------------------------------------------------

    async def overview(self) -> Overview:
        now = self._clock()
        waiting = await self._store.pending_work()
        by_destination: dict[str, dict[DeliveryStatus, int]] = {}
        for total in await self._store.delivery_totals():
            by_destination.setdefault(total.destination, {})[total.status] = total.count
        return Overview(
            at=now,
            pending=waiting.pending,
            import_queue=waiting.import_queue,
            oldest_pending_age_s=waiting.oldest_pending_age_s,
            last_hour=await self._chart(now, span_s=3600.0, buckets=12),
            last_day=await self._last_day(now),
            deliveries=[
                DestinationTotals(
                    destination=name,
                    delivered=counts.get(DeliveryStatus.DELIVERED, 0),
                    pending=counts.get(DeliveryStatus.PENDING, 0),
                    dead=counts.get(DeliveryStatus.DEAD, 0),
                )
                for name, counts in sorted(by_destination.items())
            ],
            quota=None if self._quota is None else self._quota(),
            alerts=dict(self._alerts()),
        )

    async def _last_day(self, now: float) -> OutcomeChart:
        # Counting a day of outcomes walks every one of them (~0.2 s at 100,000 a day): the
        # day's chart is drawn again at most once a minute; the hour's, on every request.
        cached = self._day_chart
        if cached is None or now - cached[0] >= DAY_CHART_TTL_S or now < cached[0]:
            cached = (now, await self._chart(now, span_s=86_400.0, buckets=24))
            self._day_chart = cached
        return cached[1]

    async def _chart(self, now: float, *, span_s: float, buckets: int) -> OutcomeChart:
        bucket_s = span_s / buckets
        since = now - span_s
        counts: dict[NotificationStatus, list[int]] = {s: [0] * buckets for s in _FINAL}
        for row in await self._store.import_outcomes(since=since, bucket_s=bucket_s):
            if row.status in counts and 0 <= row.bucket < buckets:
                counts[row.status][row.bucket] += row.count
        return OutcomeChart(since=since, bucket_s=bucket_s, counts=counts)


def _page(rows: list[T], limit: int) -> Page[T]:
    page = rows[:limit]
    following = getattr(page[-1], "id", None) if len(rows) > limit else None
    return Page(items=page, next=following)
