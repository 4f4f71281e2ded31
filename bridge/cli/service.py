"""Assembles the running service from a Settings: store, Didit client, pacer, workers, app."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette

from bridge import __version__, auth, didit
from bridge.app import Health, Intake, LiveConfig, create_app
from bridge.config import Settings
from bridge.errors import StoreUnavailable
from bridge.observability import Redactor
from bridge.pacing import Pacer
from bridge.pipeline import ImportHandler
from bridge.store import JobKind, Store, open_store
from bridge.worker import Worker, backoff_s

log = structlog.get_logger()

STOP_DEADLINE_S = 20.0  # in-flight imports get this long to finish on SIGTERM
TOKEN_SWEEP_INTERVAL_S = 60.0


def secrets_of(settings: Settings) -> list[str]:
    """Every configured secret value, so the log redactor can remove it wherever it appears."""
    found: list[str] = [settings.didit.api_key.get_secret_value()]
    for partner in settings.partners.values():
        for name in ("secrets", "keys"):
            found += [s.get_secret_value() for s in getattr(partner.auth, name, ())]
        key = getattr(partner.auth, "key", None)
        if key is not None:
            found.append(key.get_secret_value())
    for destination in settings.destinations.values():
        found += [s.get_secret_value() for s in destination.secrets]
    if settings.didit_webhooks is not None:
        found += [s.get_secret_value() for s in settings.didit_webhooks.secrets]
    if settings.admin is not None:
        found.append(settings.admin.token.get_secret_value())
    return found


class Service:
    """One ``bridge serve`` process: the receiver and the workers, started by the app lifespan."""

    def __init__(self, settings: Settings, *, redactor: Redactor | None = None) -> None:
        self.settings = settings
        self.redactor = redactor or Redactor()
        self.redactor.add_secrets(*secrets_of(settings))
        self._live = LiveConfig(settings=settings, verifiers=auth.verifiers_for(settings))
        self.store: Store = open_store(settings.store.url, clock=time.time)
        self.client = didit.DiditClient(
            settings.didit.base_url,
            settings.didit.api_key.get_secret_value(),
            timeout_s=settings.didit.timeout_s,
            max_in_flight=settings.didit.max_in_flight,
            user_agent=f"share-bridge/{__version__}",
        )
        self.pacer = Pacer(settings.didit.rate_limit_per_minute)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        rng = random.Random()  # noqa: S311 - retry jitter, not a secret
        self.import_worker = Worker(
            self.store,
            kind=JobKind.IMPORT,
            handler=ImportHandler(
                store=self.store, client=self.client, pacer=self.pacer, settings=self.current
            ),
            owner=owner,
            concurrency=settings.didit.max_in_flight,
            lease_s=max(60.0, settings.didit.timeout_s * 4),
            poll_interval_s=1.0,
            backoff=lambda attempts: backoff_s(attempts, base=2.0, cap=300.0, rng=rng),
            clock=time.time,
        )
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self.app: Starlette = create_app(
            intake=Intake(
                live=lambda: self._live,
                store=self.store,
                on_accepted=self.import_worker.notify,
                draining=lambda: self.draining,
            ),
            health=Health(store=self.store, workers_running=self._workers_running),
            lifespan=self._lifespan,
        )

    def begin_draining(self) -> None:
        """From now on intake answers 503, so partners retry against a running replica."""
        self.draining = True

    def current(self) -> Settings:
        return self._live.settings

    def _workers_running(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._tasks = [
            asyncio.create_task(self.import_worker.run(), name="import-worker"),
            asyncio.create_task(self._sweep_tokens(), name="token-sweeper"),
        ]
        log.info("bridge_started", version=__version__)
        try:
            yield
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop claiming, let in-flight work finish within the deadline, release the rest."""
        self.draining = True
        await self.import_worker.stop(STOP_DEADLINE_S)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()
        await self.store.close()
        log.info("bridge_stopped")

    async def _sweep_tokens(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_SWEEP_INTERVAL_S)
            try:
                erased = await self.store.erase_stale_tokens()
            except StoreUnavailable:
                log.warning("token_sweep_failed")
                continue
            if erased:
                log.info("tokens_erased", count=erased)
