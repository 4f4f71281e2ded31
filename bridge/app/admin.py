"""The admin API under ``/admin/v1/`` (README, Operations).

Every route needs ``Authorization: Bearer <admin.token>``, compared in constant time: 401
without it. Without an ``admin`` section in the configuration the API does not exist (404).
The token is read from the live configuration on each request, so a reload rotates it.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, TypeVar

import orjson
import structlog
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.app import api_models as m
from bridge.app.admin_views import (
    delivery_view,
    destination_view,
    notification_view,
    overview_view,
    timeline_view,
)
from bridge.app.api_routes import ADMIN, PREFIX
from bridge.app.intake import LiveConfig
from bridge.app.operations import RETRY_REFUSALS, Operations, RedeliverResult
from bridge.app.responses import error_response, model_response
from bridge.errors import StoreUnavailable
from bridge.store import NotificationSearch, RetryResult

__all__ = ["PREFIX", "Admin"]

log = structlog.get_logger()

_STORE_RETRY_AFTER_S: Final = "5"

Endpoint = Callable[[Request], Awaitable[Response]]
_M = TypeVar("_M", bound=m.Model)


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
        """Every admin operation of the route table, each behind the bearer-token guard."""
        handlers: Mapping[str, Endpoint] = {
            "overview": self.overview,
            "listNotifications": self.list_notifications,
            "showNotification": self.show_notification,
            "retryNotification": self.retry_notification,
            "listDestinations": self.list_destinations,
            "enableDestination": self.enable_destination,
            "recoverDestination": self.recover_destination,
            "listDeliveries": self.list_deliveries,
            "redeliver": self.redeliver,
            "reload": self.reload,
        }
        described = {operation.operation_id for operation in ADMIN}
        if described != set(handlers):
            raise RuntimeError(f"admin handlers {sorted(handlers)} != operations {described}")
        return [
            Route(op.path, self._guarded(handlers[op.operation_id]), methods=[op.method])
            for op in ADMIN
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
        return model_response(200, overview_view(await self._ops.overview()))

    # -- notifications --------------------------------------------------------------------

    async def list_notifications(self, request: Request) -> Response:
        query = _query(request, m.NotificationQuery)
        search = NotificationSearch(status=query.status, partner=query.partner)
        page = await self._ops.notifications(search, limit=query.limit, before=query.before)
        items = [notification_view(r) for r in page.items]
        return model_response(200, m.NotificationPage(items=items, next=page.next))

    async def show_notification(self, request: Request) -> Response:
        timeline = await self._ops.timeline(request.path_params["id"])
        if timeline is None:
            return error_response(404, "not_found", "no notification with that id")
        return model_response(200, timeline_view(timeline))

    async def retry_notification(self, request: Request) -> Response:
        notification_id = request.path_params["id"]
        keep_route = _query(request, m.RetryQuery).keep_route == "true"
        result = await self._ops.retry(notification_id, keep_route=keep_route)
        if result is RetryResult.REQUEUED:
            return model_response(202, m.Requeued(id=notification_id, result="requeued"))
        status = 404 if result is RetryResult.NOT_FOUND else 409
        return error_response(status, result.value, RETRY_REFUSALS[result])

    # -- destinations and deliveries ------------------------------------------------------

    async def list_destinations(self, request: Request) -> Response:
        views = await self._ops.destinations()
        return model_response(200, m.DestinationList(items=[destination_view(v) for v in views]))

    async def enable_destination(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await self._ops.set_enabled(name, enabled=True, reason="enabled by admin"):
            return error_response(404, "not_found", "no destination by that name")
        return model_response(200, m.Enabled(name=name, enabled=True))

    async def recover_destination(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = _body(await request.body(), m.RecoverBody)
        count = await self._ops.recover(name, since=body.since_epoch_s, status=body.status)
        if count is None:
            return error_response(404, "not_found", "no destination by that name")
        return model_response(202, m.Recovered(destination=name, requeued=count))

    async def list_deliveries(self, request: Request) -> Response:
        query = _query(request, m.DeliveryQuery)
        page = await self._ops.deliveries(
            status=query.status,
            destination=query.destination,
            limit=query.limit,
            before=query.before,
        )
        items = [delivery_view(r) for r in page.items]
        return model_response(200, m.DeliveryPage(items=items, next=page.next))

    async def redeliver(self, request: Request) -> Response:
        delivery_id = request.path_params["id"]
        result = await self._ops.redeliver(delivery_id)
        if result is RedeliverResult.NOT_FOUND:
            return error_response(404, "not_found", "no delivery with that id")
        if result is RedeliverResult.ALREADY_PENDING:
            return error_response(409, "already_pending", "the delivery is already on its way")
        return model_response(202, m.Redelivered(id=delivery_id, status="pending"))

    # -- configuration --------------------------------------------------------------------

    async def reload(self, request: Request) -> Response:
        issues = self._ops.reload()
        if issues is None:
            return error_response(404, "not_found", "this server cannot reload its configuration")
        if issues:
            refused = m.ErrorDetail(
                code="invalid_config",
                message="the configuration was refused; the running one is kept",
                issues=[
                    m.Issue(file=i.file, line=i.line, path=i.path, message=i.message)
                    for i in issues
                ],
            )
            return model_response(400, m.Error(error=refused))
        return model_response(200, m.Reloaded(status="reloaded"))


def _bearer_matches(header: str | None, expected: str) -> bool:
    scheme, _, presented = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        presented = ""
    # Compare even when nothing usable was sent, so timing tells nothing about why it failed.
    return hmac.compare_digest(presented.strip().encode(), expected.encode()) and bool(presented)


def _query(request: Request, model: type[_M]) -> _M:
    """The query parameters ``model`` declares (others are ignored), validated by it."""
    declared = model.model_fields
    given = {name: value for name, value in request.query_params.items() if name in declared}
    try:
        return model.model_validate(given)
    except ValidationError as invalid:
        raise _BadRequest("invalid_parameter", _explain(invalid)) from None


def _body(raw: bytes, model: type[_M]) -> _M:
    """A JSON object body, validated by ``model``."""
    try:
        document: object = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _BadRequest("invalid_json", "the body must be a JSON object") from None
    if not isinstance(document, dict):
        raise _BadRequest("invalid_json", "the body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as invalid:
        raise _BadRequest("invalid_body", _explain(invalid)) from None


def _explain(invalid: ValidationError) -> str:
    """Each problem as ``field: message``, without the input (it may be anything)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: "
        f"{error['msg'].removeprefix('Value error, ')}"
        for error in invalid.errors(include_url=False, include_input=False)
    )
