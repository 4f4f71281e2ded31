"""The HTTP face of share-bridge (docs/architecture.md, Intake): one module per group of routes."""

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
    ops_port: int | None = None,
) -> BridgeApp:
    """The application; ``lifespan`` starts and stops the workers (see ``cli``).

    ``middleware`` wraps every route but intake, which logs and counts its own requests. With
    ``ops_port``, metrics, OpenAPI, the admin API and the console are served only to requests
    that arrived on that port (with the probes); the other port has intake, Didit's webhooks
    and the probes.
    """
    probes = [
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
    ]
    public = [Route(INTAKE_PATH, intake, methods=["POST"]), *probes]
    if didit_webhooks is not None:
        public.append(Route("/v1/didit/webhooks", didit_webhooks.receive, methods=["POST"]))
    ops: list[BaseRoute] = []
    if metrics is not None:
        ops.append(Route("/metrics", metrics.scrape, methods=["GET"]))
    if openapi is not None:
        ops.append(Route("/openapi.json", openapi.document, methods=["GET"]))
    if admin is not None:
        ops += admin.routes()
    if console is not None:
        ops.append(console.mount())
    if ops_port is None:
        return BridgeApp(intake=intake, rest=_starlette([*public, *ops], middleware, lifespan))
    return BridgeApp(
        intake=intake,
        rest=_starlette(public, middleware, lifespan),
        ops=_starlette([*probes, *ops], middleware),
        ops_port=ops_port,
    )


def _starlette(
    routes: Sequence[BaseRoute], middleware: Sequence[Middleware], lifespan: Lifespan | None = None
) -> Starlette:
    return Starlette(
        routes=list(routes),
        lifespan=lifespan,
        middleware=list(middleware),
        exception_handlers={HTTPException: _http_error},
    )


# Starlette's own refusals (no route, a method a route does not take), in the error shape
# every other answer has, with a stable code.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    headers = dict(exc.headers or {})
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, **headers)
