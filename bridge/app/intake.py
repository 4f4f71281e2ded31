"""Partner intake: ``POST /v1/partners/{partner}/shares`` (docs/architecture.md).

Intake runs the documented checks in their order (``intake_checks.screen``, which ``bridge
route`` runs too) and answers 202 only after the store has
committed the notification. No input makes it answer 500: every refusal has a stable code.

It is the one hot path of the HTTP face, so it is a plain ASGI endpoint (``create_app`` hands
it the partner requests before Starlette's middleware and router) and it writes its own
canonical ``request`` line and intake metrics, which ``RequestLog`` writes for other routes:
Starlette's stack, the middleware and per-request context variables cost more than the checks
(``bench/bench_intake.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import orjson
import structlog
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from bridge.app.inbound import Refusal, read_body
from bridge.app.intake_checks import Screening, screen
from bridge.app.request_log import logged_path
from bridge.config import Settings
from bridge.errors import StoreUnavailable
from bridge.observability import UNKNOWN_PARTNER, Metrics, new_request_id
from bridge.signing import Verifier
from bridge.store import NewNotification, Store
from bridge.tracing import Span, Tracing

__all__ = ["DEADLINE_MARGIN_S", "INTAKE_PATH", "Intake", "LiveConfig", "partner_in"]

log = structlog.get_logger()

DEADLINE_MARGIN_S = 10.0  # a token is worth redeeming until this long before its exp
INTAKE_PATH: Final = "/v1/partners/{partner}/shares"
_PATH: Final = re.compile(r"/v1/partners/([^/]+)/shares")
_JSON_HEADERS: Final = (b"content-type", b"application/json")


def partner_in(path: str) -> str | None:
    """The partner named by an intake path; None for any other path."""
    match = _PATH.fullmatch(path)
    return None if match is None else match.group(1)


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The configuration intake reads, swapped whole on reload so a request sees one version."""

    settings: Settings
    verifiers: Mapping[str, Verifier]
    loaded_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    document: dict[str, Any]
    outcome: str  # accepted, duplicate, or the refusal's code
    notification_id: str | None = None
    rule: str | None = None
    headers: Mapping[str, str] | None = None


class Intake:
    """``POST /v1/partners/{partner}/shares``, as an ASGI app."""

    def __init__(
        self,
        *,
        live: Callable[[], LiveConfig],
        store: Store,
        on_accepted: Callable[[], None],
        clock: Callable[[], float] = time.time,
        draining: Callable[[], bool] = lambda: False,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._live = live
        self._store = store
        self._on_accepted = on_accepted
        self._clock = clock
        self._draining = draining
        self._metrics = metrics
        self._tracing = tracing

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, span: Span | None = None
    ) -> None:
        if span is None and self._tracing is not None:
            with self._tracing.intake(Headers(scope=scope)) as traced:
                return await self(scope, receive, send, traced)
        started = time.perf_counter()
        request_id = new_request_id()
        partner: str = scope["path_params"]["partner"]  # set by the router (BridgeApp's too)
        try:
            answer = await self._answer(scope, receive, partner, span)
        except Exception:  # a bug: the partner still gets an answer with a code, and a line
            log.exception("intake_failed", request_id=request_id)
            answer = _refused(Refusal(500, "internal_error", "the bridge failed; send it again"))
        body = orjson.dumps(answer.document)
        headers = [_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if answer.headers:
            headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:  # the partner may be gone by now; the line is written all the same
            self._record(scope, request_id, partner, answer, time.perf_counter() - started)
            if span is not None:
                span.set(
                    partner=partner
                    if partner in self._live().settings.partners
                    else UNKNOWN_PARTNER,
                    notification_id=answer.notification_id,
                    rule=answer.rule,
                    outcome=answer.outcome,
                    http_status=answer.status,
                )

    def _record(
        self, scope: Scope, request_id: str, partner: str, answer: _Answer, duration: float
    ) -> None:
        """The request's canonical line and the intake metrics (see ``RequestLog``)."""
        label = partner if partner in self._live().settings.partners else UNKNOWN_PARTNER
        if self._metrics is not None:
            self._metrics.notifications_received.labels(partner=label, result=answer.outcome).inc()
            self._metrics.intake_latency.observe(duration)
        fields: dict[str, Any] = {}
        if answer.notification_id is not None:
            fields["notification_id"] = answer.notification_id
        if answer.rule is not None:
            fields["rule"] = answer.rule
        log.info(
            "request",
            request_id=request_id,
            method=scope["method"],
            path=logged_path(scope["path"]),
            partner=label,
            outcome=answer.outcome,
            http_status=answer.status,
            duration_ms=round(duration * 1000, 2),
            **fields,
        )

    async def _answer(
        self, scope: Scope, receive: Receive, partner: str, span: Span | None
    ) -> _Answer:
        try:
            new = await self._screened(scope, receive, partner)
            if isinstance(new, str):  # a partner's retry of a message already accepted
                return _accepted(new, duplicate=True, rule=None)
            if span is not None:  # later work joins this trace, in whichever process runs it
                new = replace(new, trace_context=span.traceparent())
            accepted = await self._store.accept(new)
        except Refusal as refusal:
            return _refused(refusal)
        except StoreUnavailable:
            return _refused(Refusal(503, "store_unavailable", "the store is unavailable; retry"))
        if not accepted.duplicate:
            self._on_accepted()
        return _accepted(accepted.id, duplicate=accepted.duplicate, rule=new.route.rule)

    async def _screened(
        self, scope: Scope, receive: Receive, partner_name: str
    ) -> NewNotification | str:
        """The notification to store, after the intake checks; or the id of its original."""
        live = self._live()
        settings = live.settings
        known = partner_name in settings.partners
        if known and self._draining():
            raise Refusal(503, "shutting_down", "the bridge is shutting down; send it again")
        headers = Headers(scope=scope)
        # The size is refused while the body streams in; an unknown partner's is not read.
        body = await read_body(receive, headers, settings.server.max_body_bytes) if known else b""
        now = self._clock()
        screening = screen(
            settings,
            partner_name,
            body,
            now=now,
            media_type=_media_type(headers),
            authenticate=lambda: (
                live.verifiers[partner_name].verify(body, headers, now=now).message_id
            ),
        )
        refusal = screening.refusal
        if refusal is None:
            return _notification(screening)
        if screening.message_id is not None:
            # A partner retrying a message we accepted gets its original answer, even if its
            # token has expired since.
            original = await self._store.find_message(partner_name, screening.message_id)
            if original is not None:
                return original
        if refusal.status is None or refusal.code is None:
            raise AssertionError("a failed check carries intake's answer")
        raise Refusal(refusal.status, refusal.code, refusal.message)


def _notification(screening: Screening) -> NewNotification:
    """The notification to store, from a screening every check passed."""
    token, raw_token, route = screening.token, screening.raw_token, screening.route
    if token is None or raw_token is None or route is None:
        raise AssertionError("a screening without a refusal has read a token and a route")
    return NewNotification(
        partner=screening.partner,
        partner_event_id=screening.event_id,
        message_id=screening.message_id,
        business_key=token.business_key,
        token=raw_token,
        token_sha256=token.sha256,
        session_kind=token.session_kind,
        source_application_id=token.from_application_id,
        source_session_id=token.session_id,
        deadline=token.deadline(DEADLINE_MARGIN_S),
        route=route,
    )


def _accepted(notification_id: str, *, duplicate: bool, rule: str | None) -> _Answer:
    outcome = "duplicate" if duplicate else "accepted"
    return _Answer(
        status=200 if duplicate else 202,
        document={"id": notification_id, "status": outcome},
        outcome=outcome,
        notification_id=notification_id,
        rule=rule,
    )


def _refused(refusal: Refusal) -> _Answer:
    return _Answer(
        status=refusal.status,
        document={"error": {"code": refusal.code, "message": refusal.message}},
        outcome=refusal.code,
        headers=refusal.headers,
    )


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()
