"""The admin API's answers built from the store's and ``Operations``' values: notifications,
timelines, deliveries, destinations and the overview, each as its ``api_models`` model.

Times are RFC 3339 strings in UTC (``null`` when unknown). No view ever holds a share token.
The ``*_json`` functions give the same answers as plain JSON values (the CLI prints them).
"""

from __future__ import annotations

from typing import Any

from bridge.app import api_models as m
from bridge.app.operations import DestinationView, OutcomeChart
from bridge.app.operations import Overview as OverviewValue
from bridge.store import Delivery, Notification, Timeline
from bridge.times import iso_utc, iso_utc_or_none
from bridge.types import DiditSession, Reason, Route

__all__ = [
    "delivery_view",
    "destination_view",
    "iso",
    "notification_json",
    "notification_view",
    "overview_view",
    "timeline_json",
    "timeline_view",
]


def iso(epoch_s: float | None) -> str | None:
    """``2026-11-25T10:00:00.000Z``; None when unknown or not a date. A stored deadline comes
    from a partner's token, and one that no date can show must not break a listing: such a time
    only ever reaches ``deadline``, which the model declares nullable."""
    return iso_utc_or_none(epoch_s, milliseconds=True)


def _when(epoch_s: float) -> str:
    """A time the bridge's own clock recorded, which a date can always show."""
    return iso_utc(epoch_s, milliseconds=True)


def _reason(reason: Reason | None) -> m.Reason | None:
    if reason is None:
        return None
    return m.Reason(code=reason.code, message=reason.message, http_status=reason.http_status)


def _session(session: DiditSession | None) -> m.Session | None:
    if session is None:
        return None
    return m.Session(
        session_id=session.session_id,
        session_number=session.session_number,
        status=session.status,
    )


def route_view(route: Route) -> m.Route:
    return m.Route(
        rule=route.rule,
        workflow_id=route.workflow_id,
        vendor_data=route.vendor_data,
        trust_review=route.trust_review,
        destinations=list(route.destinations),
    )


def notification_view(row: Notification) -> m.Notification:
    """A notification as an operator sees it: everything but the token."""
    return m.Notification(
        id=row.id,
        partner=row.partner,
        partner_event_id=row.partner_event_id,
        status=row.status,
        session_kind=row.session_kind,
        source=m.Source(application_id=row.source_application_id, session_id=row.source_session_id),
        token_sha256=row.token_sha256,
        route=route_view(row.route),
        reason=_reason(row.reason),
        session=_session(row.session),
        deadline=iso(row.deadline),
        received_at=_when(row.received_at),
        finished_at=iso(row.finished_at),
    )


def delivery_view(row: Delivery) -> m.Delivery:
    """A delivery with the identity (not the body) of its event."""
    return m.Delivery(
        id=row.id,
        destination=row.destination,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=_when(row.created_at),
        updated_at=_when(row.updated_at),
        delivered_at=iso(row.delivered_at),
        event=m.EventRef(
            id=row.event.id,
            type=row.event.type,
            notification_id=row.event.notification_id,
            created_at=_when(row.event.created_at),
        ),
    )


def timeline_view(timeline: Timeline) -> m.Timeline:
    """Everything that happened to one notification, oldest first within each list."""
    return m.Timeline(
        notification=notification_view(timeline.notification),
        attempts=[
            m.Attempt(
                attempt=a.attempt,
                kind=a.kind,
                started_at=_when(a.started_at),
                ended_at=iso(a.ended_at),
                http_status=a.http_status,
                result=a.result,
                latency_ms=a.latency_ms,
                error=a.error,
            )
            for a in timeline.attempts
        ],
        events=[
            m.TimelineEvent(id=e.id, type=e.type, created_at=_when(e.created_at))
            for e in timeline.events
        ],
        route_changes=[
            m.RouteChange(at=_when(c.at), old=route_view(c.old), new=route_view(c.new))
            for c in timeline.route_changes
        ],
        deliveries=[delivery_view(d) for d in timeline.deliveries],
        delivery_attempts=[
            m.DeliveryAttempt(
                delivery_id=a.delivery_id,
                attempt=a.attempt,
                at=_when(a.at),
                http_status=a.http_status,
                latency_ms=a.latency_ms,
                error=a.error,
                response_excerpt=a.response_excerpt.decode("utf-8", "replace"),
            )
            for a in timeline.delivery_attempts
        ],
    )


def destination_view(view: DestinationView) -> m.Destination:
    """A destination's state and backlog."""
    return m.Destination(
        name=view.name,
        configured=view.configured,
        enabled=view.enabled,
        changed_at=iso(view.changed_at),
        reason=view.reason,
        pending=view.pending,
        dead=view.dead,
        last_error=view.last_error,
    )


def _chart(chart: OutcomeChart) -> m.Chart:
    return m.Chart(
        since=_when(chart.since),
        bucket_s=chart.bucket_s,
        counts={status.value: row for status, row in chart.counts.items()},
        totals={status.value: n for status, n in chart.totals.items()},
    )


def overview_view(overview: OverviewValue) -> m.Overview:
    """The console's overview: the queue, recent outcomes, deliveries, the quota, alerts."""
    quota = overview.quota
    return m.Overview(
        at=_when(overview.at),
        pending=overview.pending,
        import_queue=overview.import_queue,
        oldest_pending_age_s=overview.oldest_pending_age_s,
        last_hour=_chart(overview.last_hour),
        last_day=_chart(overview.last_day),
        deliveries=[
            m.DestinationHealth(
                destination=d.destination,
                delivered=d.delivered,
                pending=d.pending,
                dead=d.dead,
                success_rate=d.success_rate,
            )
            for d in overview.deliveries
        ],
        quota=None
        if quota is None
        else m.Quota(
            limit_per_minute=quota.limit_per_minute,
            budget_per_minute=quota.budget_per_minute,
            paused_until=iso(quota.paused_until),
            waits=quota.waits,
        ),
        alerts=dict(overview.alerts),
    )


def notification_json(row: Notification) -> dict[str, Any]:
    """``notification_view`` as plain JSON values."""
    return notification_view(row).model_dump(mode="json")


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    """``timeline_view`` as plain JSON values."""
    return timeline_view(timeline).model_dump(mode="json")
