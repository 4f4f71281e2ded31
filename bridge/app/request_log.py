"""One canonical log line per HTTP request (partner intake writes its own: see ``Intake``).

A pure ASGI middleware (it runs in the request's own task, so what the endpoint binds through
``structlog.contextvars`` is on the line).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.observability import new_request_id, start_log_context

__all__ = ["MAX_LOGGED_PATH", "RequestLog", "logged_path"]

log = structlog.get_logger()

# A stranger chooses the path: a line keeps its head only (the edge bounds the whole request
# head, but that bound is for memory, not for log lines).
MAX_LOGGED_PATH: Final = 256

# Probes and scrapes arrive every few seconds: their lines are kept for debugging only.
_QUIET_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})


def logged_path(path: str) -> str:
    """``path`` cut to ``MAX_LOGGED_PATH`` characters, with ``...`` when it was cut."""
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


class RequestLog:
    """ASGI middleware: ``request`` log line with method, path, status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        start_log_context(
            request_id=new_request_id(), method=scope["method"], path=logged_path(path)
        )
        answer: dict[str, Any] = {"status": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            quiet = path in _QUIET_PATHS and answer["status"] < 500
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "request",
                http_status=answer["status"],
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
