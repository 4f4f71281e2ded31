"""The admin API's JSON shapes: notifications, timelines, deliveries and destinations.

Times are RFC 3339 strings in UTC (``null`` when unknown). No view ever holds a share token.
"""

from __future__ import annotations

from typing import Any

from bridge.app.operations import DestinationView, OutcomeChart, Overview
from bridge.store import Delivery, Notification, Timeline
from bridge.times import iso_utc_or_none
from bridge.types import DiditSession, Reason, Route

__all__ = [
    "delivery_json",
    "destination_json",
    "iso",
    "notification_json",
    "overview_json",
    "timeline_json",
]


def iso(epoch_s: float | None) -> str | None:
    """``2026-11-25T10:00:00.000Z``; None when unknown or not a date. A stored deadline comes
    from a partner's token, and one that no date can show must not break a listing: such a time
    only ever reaches ``deadline``, which the OpenAPI document declares nullable."""
    return iso_utc_or_none(epoch_s, milliseconds=True)


def _reason(reason: Reason | None) -> dict[str, Any] | None:
    if reason is None:
        return None
    return {"code": reason.code, "message": reason.message, "http_status": reason.http_status}


def _session(session: DiditSession | None) -> dict[str, Any] | None:
    if session is None:
        return None
    return {
        "session_id": session.session_id,
        "session_number": session.session_number,
        "status": session.status,
    }


def notification_json(row: Notification) -> dict[str, Any]:
    """A notification as an operator sees it: everything but the token."""
    return {
        "id": row.id,
        "partner": row.partner,
        "partner_event_id": row.partner_event_id,
        "status": row.status.value,
        "session_kind": row.session_kind.value,
        "source": {
            "application_id": row.source_application_id,
            "session_id": row.source_session_id,
        },
        "token_sha256": row.token_sha256,
        "route": route_json(row.route),
        "reason": _reason(row.reason),
        "session": _session(row.session),
        "deadline": iso(row.deadline),
        "received_at": iso(row.received_at),
        "finished_at": iso(row.finished_at),
    }


def delivery_json(row: Delivery) -> dict[str, Any]:
    """A delivery with the identity (not the body) of its event."""
    return {
        "id": row.id,
        "destination": row.destination,
        "status": row.status.value,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "delivered_at": iso(row.delivered_at),
        "event": {
            "id": row.event.id,
            "type": row.event.type.value,
            "notification_id": row.event.notification_id,
            "created_at": iso(row.event.created_at),
        },
    }


def route_json(route: Route) -> dict[str, Any]:
    return {
        "rule": route.rule,
        "workflow_id": route.workflow_id,
        "vendor_data": route.vendor_data,
        "trust_review": route.trust_review,
        "destinations": list(route.destinations),
    }


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    """Everything that happened to one notification, oldest first within each list."""
    return {
        "notification": notification_json(timeline.notification),
        "attempts": [
            {
                "attempt": a.attempt,
                "kind": a.kind.value,
                "started_at": iso(a.started_at),
                "ended_at": iso(a.ended_at),
                "http_status": a.http_status,
                "result": a.result,
                "latency_ms": a.latency_ms,
                "error": a.error,
            }
            for a in timeline.attempts
        ],
        "events": [
            {"id": e.id, "type": e.type.value, "created_at": iso(e.created_at)}
            for e in timeline.events
        ],
        "route_changes": [
            {"at": iso(c.at), "old": route_json(c.old), "new": route_json(c.new)}
            for c in timeline.route_changes
        ],
        "deliveries": [delivery_json(d) for d in timeline.deliveries],
        "delivery_attempts": [
            {
                "delivery_id": a.delivery_id,
                "attempt": a.attempt,
                "at": iso(a.at),
                "http_status": a.http_status,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response_excerpt": a.response_excerpt.decode("utf-8", "replace"),
            }
            for a in timeline.delivery_attempts
        ],
    }


def destination_json(view: DestinationView) -> dict[str, Any]:
    """A destination's state and backlog."""
    return {
        "name": view.name,
        "configured": view.configured,
        "enabled": view.enabled,
        "changed_at": iso(view.changed_at),
        "reason": view.reason,
        "pending": view.pending,
        "dead": view.dead,
        "last_error": view.last_error,
    }


def _chart_json(chart: OutcomeChart) -> dict[str, Any]:
    return {
        "since": iso(chart.since),
        "bucket_s": chart.bucket_s,
        "counts": {status.value: row for status, row in chart.counts.items()},
        "totals": {status.value: n for status, n in chart.totals.items()},
    }


def overview_json(overview: Overview) -> dict[str, Any]:
    """The console's overview: the queue, recent outcomes, deliveries, the quota, alerts."""
    quota = overview.quota
    return {
        "at": iso(overview.at),
        "pending": overview.pending,
        "import_queue": overview.import_queue,
        "oldest_pending_age_s": overview.oldest_pending_age_s,
        "last_hour": _chart_json(overview.last_hour),
        "last_day": _chart_json(overview.last_day),
        "deliveries": [
            {
                "destination": d.destination,
                "delivered": d.delivered,
                "pending": d.pending,
                "dead": d.dead,
                "success_rate": d.success_rate,
            }
            for d in overview.deliveries
        ],
        "quota": None
        if quota is None
        else {
            "limit_per_minute": quota.limit_per_minute,
            "budget_per_minute": quota.budget_per_minute,
            "paused_until": iso(quota.paused_until),
            "waits": quota.waits,
        },
        "alerts": dict(overview.alerts),
    }
