"""The HTTP face of share-bridge (DESIGN.md section 4): one module per group of routes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.app.admin import Admin
from bridge.app.application import BridgeApp
from bridge.app.console import Console
from bridge.app.didit_webhooks import DiditWebhooks
from bridge.app.health import Health
from bridge.app.intake import INTAKE_PATH, Intake, LiveConfig
from bridge.app.metrics import MetricsEndpoint
from bridge.app.openapi import OpenApi
from bridge.app.request_log import RequestLog
from bridge.app.responses import error_response

__all__ = [
    "Admin",
    "BridgeApp",
    "Console",
    "DiditWebhooks",
    "Health",
    "Intake",
    "LiveConfig",
    "MetricsEndpoint",
    "OpenApi",
    "RequestLog",
    "create_app",
]

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def create_app(
    *,
    intake: Intake,
    health: Health,
    didit_webhooks: DiditWebhooks | None = None,
    lifespan: Lifespan | None = None,
    admin: Admin | None = None,
    console: Console | None = None,
    metrics: MetricsEndpoint | None = None,
    openapi: OpenApi | None = None,
    middleware: Sequence[Middleware] = (),
) -> BridgeApp:
    """The application; ``lifespan`` starts and stops the workers (see ``cli``).

    ``middleware`` wraps every route but intake, which logs and counts its own requests.
    """
    routes: list[BaseRoute] = [
        Route(INTAKE_PATH, intake, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
    ]
    if didit_webhooks is not None:
        routes.append(Route("/v1/didit/webhooks", didit_webhooks.receive, methods=["POST"]))
    if metrics is not None:
        routes.append(Route("/metrics", metrics.scrape, methods=["GET"]))
    if openapi is not None:
        routes.append(Route("/openapi.json", openapi.document, methods=["GET"]))
    if admin is not None:
        routes += admin.routes()
    if console is not None:
        routes.append(console.mount())
    rest = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=list(middleware),
        exception_handlers={HTTPException: _http_error},
    )
    return BridgeApp(intake=intake, rest=rest)


# Starlette's own refusals (no route, a method a route does not take), in the error shape
# every other answer has, with a stable code.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    headers = dict(exc.headers or {})
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, **headers)
