"""Didit's status webhooks: ``POST /v1/didit/webhooks`` (docs/events.md).

A verified ``status.updated`` for a session this bridge imported records Didit's new status and
emits ``share.status_updated`` (one transaction, the outbox). Everything else that verifies is
answered 200 and ignored, so Didit does not retry it. Webhooks may arrive out of order, twice,
or replayed: the store ranks a decided status above an undecided one, then the later signed
time, and records only a different status that ranks at least as high as the one on record
("In Review" after "Approved" is stale, so is an older decision replayed), checking it in the
write itself so that racing webhooks cannot break it (``Store.record_status_update``). Anything
else is answered 200 and emits nothing.

When only ``X-Signature-Simple`` verified, only the fields it signs are read (see
``_signed_envelope_update``); a webhook they do not describe is refused 401.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

import structlog
from starlette.requests import Request
from starlette.responses import Response

from bridge.app.inbound import Refusal, read_body
from bridge.app.responses import error_response, json_response
from bridge.config import Settings
from bridge.errors import StoreUnavailable, VerificationError
from bridge.events import ShareFacts, render_event
from bridge.signing import DiditWebhookVerifier
from bridge.store import NewEvent, Notification, StatusChange, Store
from bridge.store.ids import new_id
from bridge.types import DiditSession, EventType

log = structlog.get_logger()

STATUS_UPDATED = "status.updated"


class DiditWebhooks:
    """``POST /v1/didit/webhooks``; 404 ``didit_webhooks_disabled`` without ``didit_webhooks``."""

    def __init__(
        self,
        *,
        verifier: Callable[[], DiditWebhookVerifier | None],
        store: Store,
        settings: Callable[[], Settings],
        on_recorded: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verifier = verifier
        self._store = store
        self._settings = settings
        self._on_recorded = on_recorded  # wakes the delivery worker: the event has deliveries
        self._clock = clock

    async def receive(self, request: Request) -> Response:
        try:
            result = await self._receive(request)
        except Refusal as refusal:
            log.info("didit_webhook_refused", code=refusal.code, http_status=refusal.status)
            return error_response(refusal.status, refusal.code, refusal.message, **refusal.headers)
        return json_response(200, {"status": result})

    async def _receive(self, request: Request) -> str:
        verifier = self._verifier()
        if verifier is None:
            raise Refusal(404, "didit_webhooks_disabled", "didit_webhooks is not configured")
        settings = self._settings()
        body = await read_body(request.receive, request.headers, settings.server.max_body_bytes)
        try:
            verified = verifier.verify(body, request.headers, now=self._clock())
        except VerificationError as exc:
            raise Refusal(401, exc.code, exc.message) from None
        update = _status_update(verified.payload, envelope_only=verified.envelope_only)
        if update is None:
            return "ignored"
        session_id, status = update
        try:
            notification = await self._store.find_by_session(session_id)
            if notification is None:
                return "ignored"
            event = self._event(notification, status, settings)
            change = await self._store.record_status_update(
                notification.id, didit_status=status, signed_at=verified.signed_at, event=event
            )
        except StoreUnavailable:
            raise Refusal(503, "store_unavailable", "the store is unavailable; retry") from None
        if change is StatusChange.UNCHANGED:
            return "unchanged"  # a redelivered webhook: its event was already emitted
        if change is StatusChange.STALE:
            log.info("didit_status_stale", notification_id=notification.id, status=status)
            return "ignored"
        self._on_recorded()
        log.info("didit_status_updated", notification_id=notification.id, status=status)
        return "recorded"

    def _event(self, notification: Notification, status: str, settings: Settings) -> NewEvent:
        now = self._clock()
        event_id = new_id("evt", now)
        previous = notification.session
        session = DiditSession(
            session_id=previous.session_id if previous else "",
            session_number=previous.session_number if previous else None,
            status=status,
        )
        body = render_event(
            event_id=event_id,
            event_type=EventType.STATUS_UPDATED,
            created_at=now,
            share=ShareFacts.of(notification),
            session=session,
            reason=None,
        )
        configured = settings.destinations
        destinations = tuple(
            name
            for name in notification.route.destinations
            if name not in configured or EventType.STATUS_UPDATED in configured[name].events
        )
        return NewEvent(
            id=event_id, type=EventType.STATUS_UPDATED, body=body, destinations=destinations
        )


def _status_update(payload: Mapping[str, Any], *, envelope_only: bool) -> tuple[str, str] | None:
    """(session id, new status) of a ``status.updated`` webhook, flat or nested; else None."""
    if envelope_only:
        return _signed_envelope_update(payload)
    kind = payload.get("webhook_type")
    fields: Mapping[str, Any] = payload
    nested = payload.get("data")
    if kind is None and isinstance(nested, dict):
        kind, fields = payload.get("event"), nested
    if kind != STATUS_UPDATED:
        return None
    session_id = fields.get("session_id") or fields.get("business_session_id")
    status = fields.get("status")
    if not (isinstance(session_id, str) and session_id and isinstance(status, str) and status):
        return None
    return session_id, status.strip()


def _signed_envelope_update(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """Only ``X-Signature-Simple`` matched: it signs the top-level ``timestamp``, ``session_id``,
    ``status`` and ``webhook_type`` and nothing else (not the nested envelope's ``event`` and
    ``data``, not ``business_session_id``), so only those are read. A signed type other than
    ``status.updated`` is ignored; a webhook whose signed fields do not name the session and
    status is refused 401 ``invalid_signature``, never recorded from unsigned fields.
    """
    kind = payload.get("webhook_type")
    if kind not in (None, "", STATUS_UPDATED):
        return None
    session_id, status = payload.get("session_id"), payload.get("status")
    if kind == STATUS_UPDATED and _signed_text(session_id) and _signed_text(status):
        return session_id, status.strip()
    raise Refusal(
        401,
        "invalid_signature",
        "only X-Signature-Simple verified, and it does not sign this webhook's session id and "
        "status; they are not trusted (X-Signature-V2 or X-Signature covers them)",
    )


def _signed_text(value: object) -> TypeGuard[str]:
    """A non-empty string without ':', Simple's separator (a ':' would make its fields shift)."""
    return isinstance(value, str) and bool(value.strip()) and ":" not in value
