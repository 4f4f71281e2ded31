"""``/healthz`` and ``/readyz``."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from bridge.app.responses import json_response
from bridge.errors import StoreUnavailable
from bridge.store import Store


class Health:
    """``/healthz`` (alive) and ``/readyz`` (store reachable, config loaded, workers running)."""

    def __init__(self, *, store: Store, workers_running: Callable[[], bool]) -> None:
        self._store = store
        self._workers_running = workers_running

    async def healthz(self, request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    async def checks(self) -> dict[str, bool]:
        """Each readiness check by name; ready when all hold (``/readyz``, ``bridge_ready``)."""
        checks = {"config": True, "workers": self._workers_running()}
        try:
            await self._store.ping()
            checks["store"] = True
        except StoreUnavailable:
            checks["store"] = False
        return checks

    async def ready(self) -> bool:
        return all((await self.checks()).values())

    async def readyz(self, request: Request) -> Response:
        checks = await self.checks()
        ready = all(checks.values())
        return json_response(200 if ready else 503, {"ready": ready, "checks": checks})
