"""The Didit sandbox for tests: as a real ``bridge sandbox`` subprocess, or in a thread.

``start_sandbox_process(port=None, seed=0) -> (base_url, process)`` runs the real server
process; ``sandbox_in_thread(seed)`` serves ``create_app(build_starter_world(seed))`` in this
process, so a test can also reach the sandbox's state directly (``running.state``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bridge.sandbox import QuotaConfig, SandboxApp, build_starter_world, create_app
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.process import SandboxStartError, start_sandbox_process
from bridge.sandbox.state import SandboxState
from tests.support.asgi_server import serve_in_thread

__all__ = ["RunningSandbox", "SandboxStartError", "sandbox_in_thread", "start_sandbox_process"]


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    base_url: str
    app: SandboxApp
    control: SandboxControl

    @property
    def state(self) -> SandboxState:
        return self.app.sandbox


@contextmanager
def sandbox_in_thread(
    seed: int = 0, *, quota: QuotaConfig | None = None
) -> Iterator[RunningSandbox]:
    """The ready world of ``seed`` served by uvicorn on 127.0.0.1 in a background thread."""
    app = create_app(build_starter_world(seed), seed=seed, quota=quota)
    with serve_in_thread(app) as base_url, SandboxControl(base_url) as control:
        yield RunningSandbox(base_url=base_url, app=app, control=control)
