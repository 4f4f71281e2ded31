"""The HTTP face of share-bridge (DESIGN.md section 4): one module per group of routes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.routing import Route

from bridge.app.health import Health
from bridge.app.intake import Intake, LiveConfig

__all__ = ["Health", "Intake", "LiveConfig", "create_app"]

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def create_app(*, intake: Intake, health: Health, lifespan: Lifespan | None = None) -> Starlette:
    """The Starlette application; ``lifespan`` starts and stops the workers (see ``cli``)."""
    routes = [
        Route("/v1/partners/{partner}/shares", intake.receive, methods=["POST"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
