"""The admin API under ``/admin/v1/`` (README, Operations).

Every route needs ``Authorization: Bearer <admin.token>``, compared in constant time: 401
without it. Without an ``admin`` section in the configuration the API does not exist (404).
The token is read from the live configuration on each request, so a reload rotates it.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.app.admin_views import (
    delivery_json,
    destination_json,
    notification_json,
    overview_json,
    timeline_json,
)
from bridge.app.intake import LiveConfig
from bridge.app.operations import REDELIVERABLE, RETRY_REFUSALS, Operations, RedeliverResult
from bridge.app.responses import error_response, json_response
from bridge.errors import StoreUnavailable
from bridge.store import DeliveryStatus, NotificationSearch, RetryResult
from bridge.types import NotificationStatus

__all__ = ["MAX_PAGE", "PREFIX", "Admin"]

log = structlog.get_logger()

PREFIX: Final = "/admin/v1"
MAX_PAGE: Final = 500
DEFAULT_PAGE: Final = 50
_MAX_TEXT: Final = 200
_STORE_RETRY_AFTER_S: Final = "5"
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)

Endpoint = Callable[[Request], Awaitable[Response]]
_E = TypeVar("_E", NotificationStatus, DeliveryStatus)


class _BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Admin:
    """The admin routes; ``routes()`` gives them to ``create_app``."""

    def __init__(self, *, live: Callable[[], LiveConfig], operations: Operations) -> None:
        self._live = live
        self._ops = operations

    def routes(self) -> list[Route]:
        """Every admin route, each behind the bearer-token guard."""
        table: list[tuple[str, Endpoint, str]] = [
            ("/overview", self.overview, "GET"),
            ("/notifications", self.list_notifications, "GET"),
            ("/notifications/{id}", self.show_notification, "GET"),
            ("/notifications/{id}/retry", self.retry_notification, "POST"),
            ("/destinations", self.list_destinations, "GET"),
            ("/destinations/{name}/enable", self.enable_destination, "POST"),
            ("/destinations/{name}/recover", self.recover_destination, "POST"),
            ("/deliveries", self.list_deliveries, "GET"),
            ("/deliveries/{id}/redeliver", self.redeliver, "POST"),
            ("/reload", self.reload, "POST"),
        ]
        return [
            Route(PREFIX + path, self._guarded(endpoint), methods=[method])
            for path, endpoint, method in table
        ]

    # -- the guard ------------------------------------------------------------------------

    def _guarded(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            admin = self._live().settings.admin
            if admin is None:
                return error_response(404, "not_found", "the admin API is not configured")
            expected = admin.token.get_secret_value()
            if not _bearer_matches(request.headers.get("authorization"), expected):
                return error_response(
                    401,
                    "unauthorized",
                    "send Authorization: Bearer <admin token>",
                    **{"WWW-Authenticate": 'Bearer realm="share-bridge admin"'},
                )
            try:
                return await endpoint(request)
            except _BadRequest as bad:
                return error_response(400, bad.code, bad.message)
            except StoreUnavailable:
                return error_response(
                    503,
                    "store_unavailable",
                    "the store is unavailable; retry",
                    **{"Retry-After": _STORE_RETRY_AFTER_S},
                )

        return guarded

    async def overview(self, request: Request) -> Response:
        return json_response(200, overview_json(await self._ops.overview()))

    # -- notifications --------------------------------------------------------------------

    async def list_notifications(self, request: Request) -> Response:
        query = request.query_params
        search = NotificationSearch(
            status=_enum(query.get("status"), NotificationStatus, "status"),
            partner=_text(query.get("partner"), "partner"),
        )
        page = await self._ops.notifications(
            search, limit=_limit(query.get("limit")), before=_text(query.get("before"), "before")
        )
        items = [notification_json(r) for r in page.items]
        return json_response(200, {"items": items, "next": page.next})

    async def show_notification(self, request: Request) -> Response:
        timeline = await self._ops.timeline(request.path_params["id"])
        if timeline is None:
            return error_response(404, "not_found", "no notification with that id")
        return json_response(200, timeline_json(timeline))

    async def retry_notification(self, request: Request) -> Response:
        notification_id = request.path_params["id"]
        keep_route = _flag(request.query_params.get("keep_route"), "keep_route")
        result = await self._ops.retry(notification_id, keep_route=keep_route)
        if result is RetryResult.REQUEUED:
            return json_response(202, {"id": notification_id, "result": result.value})
        status = 404 if result is RetryResult.NOT_FOUND else 409
        return error_response(status, result.value, RETRY_REFUSALS[result])

    # -- destinations and deliveries ------------------------------------------------------

    async def list_destinations(self, request: Request) -> Response:
        views = await self._ops.destinations()
        return json_response(200, {"items": [destination_json(v) for v in views]})

    async def enable_destination(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await self._ops.set_enabled(name, enabled=True, reason="enabled by admin"):
            return error_response(404, "not_found", "no destination by that name")
        return json_response(200, {"name": name, "enabled": True})

    async def recover_destination(self, request: Request) -> Response:
        name = request.path_params["name"]
        since, status = _recover_body(await request.body())
        count = await self._ops.recover(name, since=since, status=status)
        if count is None:
            return error_response(404, "not_found", "no destination by that name")
        return json_response(202, {"destination": name, "requeued": count})

    async def list_deliveries(self, request: Request) -> Response:
        query = request.query_params
        page = await self._ops.deliveries(
            status=_enum(query.get("status"), DeliveryStatus, "status"),
            destination=_text(query.get("destination"), "destination"),
            limit=_limit(query.get("limit")),
            before=_text(query.get("before"), "before"),
        )
        items = [delivery_json(r) for r in page.items]
        return json_response(200, {"items": items, "next": page.next})

    async def redeliver(self, request: Request) -> Response:
        delivery_id = request.path_params["id"]
        result = await self._ops.redeliver(delivery_id)
        if result is RedeliverResult.NOT_FOUND:
            return error_response(404, "not_found", "no delivery with that id")
        if result is RedeliverResult.ALREADY_PENDING:
            return error_response(409, "already_pending", "the delivery is already on its way")
        return json_response(202, {"id": delivery_id, "status": DeliveryStatus.PENDING.value})

    # -- configuration --------------------------------------------------------------------

    async def reload(self, request: Request) -> Response:
        issues = self._ops.reload()
        if issues is None:
            return error_response(404, "not_found", "this server cannot reload its configuration")
        if issues:
            body = {
                "error": {
                    "code": "invalid_config",
                    "message": "the configuration was refused; the running one is kept",
                    "issues": [
                        {"file": i.file, "line": i.line, "path": i.path, "message": i.message}
                        for i in issues
                    ],
                }
            }
            return json_response(400, body)
        return json_response(200, {"status": "reloaded"})


def _bearer_matches(header: str | None, expected: str) -> bool:
    scheme, _, presented = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        presented = ""
    # Compare even when nothing usable was sent, so timing tells nothing about why it failed.
    return hmac.compare_digest(presented.strip().encode(), expected.encode()) and bool(presented)


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise _BadRequest("invalid_parameter", f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def _text(raw: str | None, name: str) -> str | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= _MAX_TEXT:
        raise _BadRequest("invalid_parameter", f"{name} must be 1 to {_MAX_TEXT} characters")
    return raw


def _flag(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise _BadRequest("invalid_parameter", f"{name} must be true or false")
    return raw == "true"


def _enum(raw: str | None, kind: type[_E], name: str) -> _E | None:
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise _BadRequest("invalid_parameter", f"{name} must be one of: {allowed}") from None


def _recover_body(body: bytes) -> tuple[float, DeliveryStatus | None]:
    """``{"since": RFC 3339 date-time, "status": "dead"|"delivered"}`` -> (epoch s, status)."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _BadRequest("invalid_json", "the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise _BadRequest("invalid_json", "the body must be a JSON object")
    unknown = sorted(set(document) - {"since", "status"})
    if unknown:
        raise _BadRequest("invalid_body", f"unknown field(s): {', '.join(unknown)}")
    since = document.get("since")
    if not isinstance(since, str) or _RFC3339.fullmatch(since) is None:
        raise _BadRequest("invalid_body", "since must be an RFC 3339 date-time with an offset")
    try:
        moment = datetime.fromisoformat(since.upper().replace("Z", "+00:00"))
        # In UTC, a time near year 1 or 9999 may leave the calendar ("9999-12-31T23:59:59-01:00").
        epoch_s = moment.astimezone(UTC).timestamp()
    except (ValueError, OverflowError):
        raise _BadRequest("invalid_body", "since is not a valid date-time") from None
    status = document.get("status")
    if status is None:
        return epoch_s, None
    if not isinstance(status, str) or status not in {s.value for s in REDELIVERABLE}:
        raise _BadRequest("invalid_body", "status must be dead or delivered")
    return epoch_s, DeliveryStatus(status)
