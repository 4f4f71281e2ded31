"""Fixtures for the operations tests: the sandbox fixtures of ``tests/support/fixtures.py``,
``bridge serve`` processes with an admin token and a downstream sink, and a recording sink served
in a thread.

- ``sandbox_url``, ``control``, ``target``: see ``tests/support/fixtures.py`` (our application in
  a fresh sandbox world; one sandbox process per session).
- ``make_bridge(**options)``: an ``OpsBridge`` (``tests/support/ops_bridge.py``: a
  ``BridgeProcess`` whose config also has ``admin.token`` and any ``extra`` top-level sections),
  stopped at teardown.
- ``sink``: a :class:`RecordingSink` on 127.0.0.1 whose answers a test can change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.asgi_server import serve_in_thread
from tests.support.bridge_process import SandboxTarget
from tests.support.fixtures import bridge_factory, control, sandbox_url, target
from tests.support.ops_bridge import ADMIN_TOKEN, OpsBridge

__all__ = [
    "ADMIN_TOKEN",
    "SINK_SECRET",
    "MakeBridge",
    "OpsBridge",
    "RecordingSink",
    "control",
    "make_bridge",
    "sandbox_url",
    "sink",
    "target",
]

SINK_SECRET = "whsec_b3BzLXRlc3Qtc2luay1zZWNyZXQtdmFsdWU="


MakeBridge = Callable[..., OpsBridge]


@pytest.fixture
def make_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[MakeBridge]:
    yield from bridge_factory(OpsBridge, tmp_path, target)


class RecordingSink:
    """A downstream webhook that records each body and answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.status = 200
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        self.url = ""

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.bodies.append(body)
            status = self.status
        return Response(b"{}", status, media_type="application/json")

    def destination(self, **overrides: Any) -> dict[str, Any]:
        """A ``destinations`` entry pointing here."""
        return {
            "url": self.url,
            "secrets": [SINK_SECRET],
            "timeout_s": 2,
            "retry_schedule": ["1s"],
            **overrides,
        }


@pytest.fixture
def sink() -> Iterator[RecordingSink]:
    recording = RecordingSink()
    app = Starlette(routes=[Route("/hook", recording.receive, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        recording.url = f"{base_url}/hook"
        yield recording
