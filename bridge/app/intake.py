"""Partner intake: ``POST /v1/partners/{partner}/shares`` (DESIGN.md section 4).

Intake runs the checks of DESIGN §4 in their order and answers 202 only after the store has
committed the notification. No input makes it answer 500: every refusal has a stable code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from bridge import rules, tokens
from bridge.app.responses import error_response, json_response
from bridge.config import Settings
from bridge.errors import RoutingError, StoreUnavailable, TokenError, VerificationError
from bridge.signing import Verifier
from bridge.store import NewNotification, Store

log = structlog.get_logger()

DEADLINE_MARGIN_S = 10.0  # a token is worth redeeming until this long before its exp
STORE_RETRY_AFTER_S = "5"


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The configuration intake reads, swapped whole on reload so a request sees one version."""

    settings: Settings
    verifiers: Mapping[str, Verifier]


class Refusal(Exception):
    """An answer other than 202, raised inside intake and rendered in one place."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Intake:
    """``POST /v1/partners/{partner}/shares``."""

    def __init__(
        self,
        *,
        live: Callable[[], LiveConfig],
        store: Store,
        on_accepted: Callable[[], None],
        clock: Callable[[], float] = time.time,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self._live = live
        self._store = store
        self._on_accepted = on_accepted
        self._clock = clock
        self._draining = draining

    async def receive(self, request: Request) -> Response:
        partner = request.path_params["partner"]
        structlog.contextvars.bind_contextvars(partner=partner)
        try:
            notification_id, duplicate = await self._receive(request, partner)
        except Refusal as refusal:
            log.info("share_refused", code=refusal.code, http_status=refusal.status)
            headers = {"Retry-After": STORE_RETRY_AFTER_S} if refusal.status == 503 else {}
            return error_response(refusal.status, refusal.code, refusal.message, **headers)
        finally:
            structlog.contextvars.unbind_contextvars("partner")
        status = "duplicate" if duplicate else "accepted"
        # Debug only: the request's canonical line (RequestLog) carries the same facts.
        log.debug("share_received", notification_id=notification_id, result=status)
        return json_response(200 if duplicate else 202, {"id": notification_id, "status": status})

    async def _receive(self, request: Request, partner_name: str) -> tuple[str, bool]:
        live = self._live()
        settings = live.settings
        partner = settings.partners.get(partner_name)
        if partner is None:
            raise Refusal(404, "unknown_partner", "no partner by that name is configured")
        if self._draining():
            raise Refusal(503, "shutting_down", "the bridge is shutting down; send it again")
        body = await read_body(request, settings.server.max_body_bytes)
        if _media_type(request) != "application/json":
            raise Refusal(415, "unsupported_media_type", "send the body as application/json")
        now = self._clock()
        try:
            verified = live.verifiers[partner_name].verify(body, request.headers, now=now)
        except VerificationError as exc:
            raise Refusal(401, exc.code, exc.message) from None
        try:
            new = _screen(settings, partner_name, body, verified.message_id, now)
        except Refusal:
            if verified.message_id is not None:
                # A partner retrying a message we accepted gets its original answer, even if
                # its token has expired since (DESIGN §3).
                original = await self._original(partner_name, verified.message_id)
                if original is not None:
                    return original, True
            raise
        try:
            accepted = await self._store.accept(new)
        except StoreUnavailable:
            raise Refusal(503, "store_unavailable", "the store is unavailable; retry") from None
        if not accepted.duplicate:
            self._on_accepted()
        return accepted.id, accepted.duplicate

    async def _original(self, partner: str, message_id: str) -> str | None:
        try:
            return await self._store.find_message(partner, message_id)
        except StoreUnavailable:
            raise Refusal(503, "store_unavailable", "the store is unavailable; retry") from None


def _screen(
    settings: Settings, partner_name: str, body: bytes, message_id: str | None, now: float
) -> NewNotification:
    """The checks after authentication, in DESIGN §4 order; the notification to store."""
    partner = settings.partners[partner_name]
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refusal(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Refusal(400, "invalid_json", "the body must be a JSON object")
    found, raw_token = rules.lookup(payload, partner.fields.share_token)
    if not found or raw_token is None or raw_token == "":
        raise Refusal(
            422, "missing_share_token", f"no share token at {partner.fields.share_token!r}"
        )
    if not isinstance(raw_token, str):
        raise Refusal(422, "malformed_share_token", "the share token must be a string")
    try:
        token = tokens.read_share_token(raw_token)
    except TokenError as exc:
        raise Refusal(422, exc.code, exc.message) from None
    if token.is_expired(now):
        raise Refusal(422, "share_token_expired", "the share token has expired")
    if not token.is_for(settings.didit.application_id):
        raise Refusal(
            422,
            "share_token_not_for_this_application",
            "the share token was minted for another Didit application",
        )
    has_event_id, raw_event_id = rules.lookup(payload, partner.fields.event_id)
    event_id = rules.render_value(raw_event_id) if has_event_id else None
    try:
        route = rules.route(
            partner=partner_name,
            payload=payload,
            token=token,
            event_id=event_id,
            rules=settings.rules,
        )
    except RoutingError as exc:
        raise Refusal(422, exc.code, exc.message) from None
    structlog.contextvars.bind_contextvars(rule=route.rule)  # for the request's canonical line
    return NewNotification(
        partner=partner_name,
        partner_event_id=event_id,
        message_id=message_id,
        business_key=token.business_key,
        token=raw_token,
        token_sha256=token.sha256,
        session_kind=token.session_kind,
        source_application_id=token.from_application_id,
        source_session_id=token.session_id,
        deadline=token.deadline(DEADLINE_MARGIN_S),
        route=route,
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refusal(413, "body_too_large", f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refusal(413, "body_too_large", f"the body exceeds {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refusal(400, "client_disconnected", "the body did not arrive whole") from None
    return b"".join(chunks)
