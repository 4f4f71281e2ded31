"""Fixtures for the operations tests: a sandbox process, ``bridge serve`` processes with an admin
token and a downstream sink, and a recording sink served in a thread.

- ``target``: our application in a fresh sandbox world (one sandbox process per session).
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

from bridge.sandbox.control import SandboxControl
from tests.support.asgi_server import serve_in_thread
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.sandbox import start_sandbox_process

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
        super().__init__(directory, target, start=False, **options)

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


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    with start_sandbox_process(seed=0) as (base_url, _process):
        yield base_url


@pytest.fixture
def control(sandbox_url: str) -> Iterator[SandboxControl]:
    with SandboxControl(sandbox_url) as sandbox:
        sandbox.reset()
        yield sandbox


@pytest.fixture
def target(control: SandboxControl) -> SandboxTarget:
    return SandboxTarget.from_control(control)


@pytest.fixture
def make_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[MakeBridge]:
    made: list[OpsBridge] = []

    def make(*, start: bool = True, **options: Any) -> OpsBridge:
        directory = tmp_path / f"bridge{len(made)}"
        directory.mkdir()
        bridge = OpsBridge(directory, target, **options)
        made.append(bridge)
        if start:
            bridge.start()
        return bridge

    yield make
    for bridge in made:
        bridge.close()


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
