"""Fixtures for the operations tests: the sandbox fixtures of ``tests/support/fixtures.py``,
``bridge serve`` processes with an admin token and a downstream sink, and a recording sink served
in a thread.

- ``sandbox_url``, ``control``, ``target``: see ``tests/support/fixtures.py`` (our application in
  a fresh sandbox world; one sandbox process per session).
- ``make_bridge(**options)``: an :class:`OpsBridge` (a ``BridgeProcess`` whose config also has
  ``admin.token`` and any ``extra`` top-level sections), stopped at teardown.
- ``sink``: a :class:`RecordingSink` on 127.0.0.1 whose answers a test can change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.asgi_server import serve_in_thread
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.fixtures import bridge_factory, control, sandbox_url, target

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

ADMIN_TOKEN = "adm-0f3b8c2e9d7a41b6a5c4e3f2d1c0b9a8"
SINK_SECRET = "whsec_b3BzLXRlc3Qtc2luay1zZWNyZXQtdmFsdWU="


class OpsBridge(BridgeProcess):
    """A ``BridgeProcess`` whose config also holds ``admin.token`` and the ``extra`` sections."""

    def __init__(
        self,
        directory: Path,
        target: SandboxTarget,
        *,
        extra: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.extra: dict[str, Any] = {"admin": {"token": ADMIN_TOKEN}, **(extra or {})}
        super().__init__(directory, target, **options)

    def write_config(self, **changes: Any) -> None:
        super().write_config(**changes)
        document = yaml.safe_load(self.config_path.read_text())
        document.update(self.extra)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        self._settings = None

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call ``/admin/v1{path}`` with the admin token."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return self.http.request(
            method, f"{self.base_url}/admin/v1{path}", headers=headers, **kwargs
        )


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
