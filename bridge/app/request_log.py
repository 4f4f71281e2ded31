"""One canonical log line per HTTP request, and the intake's metrics.

A pure ASGI middleware (it runs in the request's own task, so what the endpoint binds through
``structlog.contextvars``, such as ``rule``, is on the line). For a partner notification it
also counts the answer by partner and result (``_unknown`` for a partner not configured, so a
URL cannot grow the label set) and observes the intake latency.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Collection
from typing import Any, Final

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.observability import Metrics, bind, bind_request

__all__ = ["UNKNOWN_PARTNER", "RequestLog"]

log = structlog.get_logger()

UNKNOWN_PARTNER: Final = "_unknown"
_INTAKE: Final = re.compile(r"/v1/partners/(?P<partner>[^/]+)/shares")
# Probes and scrapes arrive every few seconds: their lines are kept for debugging only.
_QUIET_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_BODY_KEPT: Final = 4096  # an intake answer is small; enough to read its id and code


class RequestLog:
    """ASGI middleware: ``request`` log line with method, path, status, duration and outcome."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None = None,
        partners: Callable[[], Collection[str]] = tuple,
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._partners = partners

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        intake = _INTAKE.fullmatch(path) if method == "POST" else None
        bind_request(request_id=os.urandom(8).hex(), method=method, path=path)
        answer: dict[str, Any] = {"status": 500}
        body = bytearray()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body" and intake is not None:
                body.extend(message.get("body", b"")[: _BODY_KEPT - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            duration = time.perf_counter() - started
            fields: dict[str, Any] = {}
            if intake is not None:
                fields = self._intake(intake["partner"], answer["status"], bytes(body), duration)
            level = "debug" if path in _QUIET_PATHS and answer["status"] < 500 else "info"
            log.log(
                _LEVELS[level],
                "request",
                http_status=answer["status"],
                duration_ms=round(duration * 1000, 2),
                **fields,
            )

    def _intake(self, partner: str, status: int, body: bytes, duration: float) -> dict[str, Any]:
        notification_id, result = _read_answer(status, body)
        known = partner in self._partners()
        if self._metrics is not None:
            label = partner if known else UNKNOWN_PARTNER
            self._metrics.notifications_received.labels(partner=label, result=result).inc()
            self._metrics.intake_latency.observe(duration)
        bind(partner=partner if known else UNKNOWN_PARTNER, outcome=result)
        return {} if notification_id is None else {"notification_id": notification_id}


def _read_answer(status: int, body: bytes) -> tuple[str | None, str]:
    """(notification id, result): ``accepted``/``duplicate``, or the error code."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, f"http_{status}"
    if not isinstance(document, dict):
        return None, f"http_{status}"
    error = document.get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return None, error["code"]
    found, result = document.get("id"), document.get("status")
    if isinstance(found, str) and isinstance(result, str):
        return found, result
    return None, f"http_{status}"


_LEVELS: Final = {"debug": 10, "info": 20}
