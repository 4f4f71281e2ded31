"""Our own system as the bridge's destination, for tests: a webhook on 127.0.0.1 that records
every POST (headers and body) and answers ``status`` (200 unless a test changes it). The
``sink`` fixture (``tests/support/fixtures.py``) serves one in a thread for each test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.asgi_server import serve_in_thread

__all__ = ["SINK_SECRET", "RecordingSink", "recording_sink"]

SINK_SECRET = "whsec_b3BzLXRlc3Qtc2luay1zZWNyZXQtdmFsdWU="


class RecordingSink:
    """Every request received, in order, as ``(headers, body)``."""

    def __init__(self) -> None:
        self.status = 200
        self.url = ""
        self._received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self._received.append((dict(request.headers), body))
            status = self.status
        return Response(b"{}", status, media_type="application/json")

    @property
    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return list(self._received)

    @property
    def bodies(self) -> list[bytes]:
        return [body for _, body in self.received]

    @property
    def headers(self) -> list[dict[str, str]]:
        return [headers for headers, _ in self.received]

    def webhook_ids(self) -> list[str]:
        return [headers["webhook-id"] for headers in self.headers]

    def destination(self, **overrides: Any) -> dict[str, Any]:
        """A ``destinations`` entry pointing here, signed with ``SINK_SECRET``."""
        return {
            "url": self.url,
            "secrets": [SINK_SECRET],
            "timeout_s": 2,
            "retry_schedule": ["1s"],
            **overrides,
        }


@contextmanager
def recording_sink() -> Iterator[RecordingSink]:
    """A :class:`RecordingSink` served at ``{its url}`` until the block ends."""
    sink = RecordingSink()
    app = Starlette(routes=[Route("/hook", sink.receive, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        sink.url = f"{base_url}/hook"
        yield sink
