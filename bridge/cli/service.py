"""Assembles the running service from a Settings: store, Didit client, pacer, workers, app."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.middleware import Middleware

from bridge import __version__, auth, config, didit
from bridge.app import (
    Admin,
    BridgeApp,
    DiditWebhooks,
    Health,
    Intake,
    LiveConfig,
    MetricsEndpoint,
    OpenApi,
    RequestLog,
    create_app,
)
from bridge.app.console import Console
from bridge.app.metrics import PacerCounters, store_snapshot
from bridge.app.operations import Operations, QuotaUse
from bridge.cli._common import open_configured_store
from bridge.config import Settings
from bridge.delivery import Sender
from bridge.errors import ConfigError, ConfigIssue, StoreUnavailable
from bridge.observability import Metrics, Redactor, start_log_context
from bridge.pacing import Pacer, quota_key
from bridge.pipeline import (
    Alarm,
    DeliverHandler,
    ImportHandler,
    RejectionWatch,
    delivery_concurrency,
    fair_share,
    sweep_history,
)
from bridge.store import Job, JobKind, Store, sqlite_path
from bridge.tracing import NO_TRACING, Tracing
from bridge.types import JobResult
from bridge.worker import Worker, backoff_s

log = structlog.get_logger()

STOP_DEADLINE_S = 20.0  # in-flight imports get this long to finish on SIGTERM
TOKEN_SWEEP_INTERVAL_S = 60.0
# What a reload cannot change in a running process: these keys wait for a restart.
RESTART_ONLY = (
    ("didit", "base_url"),
    ("didit", "api_key"),
    ("didit", "timeout_s"),
    ("didit", "rate_limit_per_minute"),
    ("didit", "max_in_flight"),
    ("store", "url"),
    ("server", "host"),
    ("server", "port"),
    ("server", "ops_host"),
    ("server", "ops_port"),
    ("server", "max_header_bytes"),
    ("server", "header_timeout_s"),
    ("server", "body_timeout_s"),
    ("server", "max_connections"),
    ("logging", "level"),
    ("logging", "format"),
)


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
    found += [key.get_secret_value() for key in settings.store.token_keys]
    password = urlsplit(settings.store.url).password
    if password:
        found.append(password)
    return found


class Service:
    """One ``share-bridge serve`` process: the receiver and the workers, started by the lifespan."""

    def __init__(
        self,
        settings: Settings,
        *,
        redactor: Redactor | None = None,
        config_path: str | os.PathLike[str] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing
        self.config_path = None if config_path is None else Path(config_path)
        self.metrics = Metrics()
        self._reloads = Counter(
            "bridge_config_reloads", "Configuration reloads, by result.", ["result"],
            registry=self.metrics.registry,
        )  # fmt: skip
        self._loop: asyncio.AbstractEventLoop | None = None
        self.redactor = redactor or Redactor()
        self.redactor.add_secrets(*secrets_of(settings))
        self._live = LiveConfig(settings=settings, verifiers=auth.verifiers_for(settings))
        self.store: Store = open_configured_store(settings.store, clock=time.time)
        self.client = didit.DiditClient(
            settings.didit.base_url,
            settings.didit.api_key.get_secret_value(),
            timeout_s=settings.didit.timeout_s,
            max_in_flight=settings.didit.max_in_flight,
            user_agent=f"share-bridge/{__version__}",
            observer=self._observe_didit,
        )
        self.rejections = RejectionWatch(metrics=self.metrics)
        self.pacer = Pacer(
            settings.didit.rate_limit_per_minute,
            no_jumps=self.rejections.slowed,
            shared=self.store.shared_quota(),
            quota_key=quota_key(settings.didit.api_key.get_secret_value()),
        )
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        rng = random.Random()  # noqa: S311 - retry jitter, not a secret
        self.import_worker = Worker(
            self.store,
            kind=JobKind.IMPORT,
            handler=self._then_wake_deliveries(
                _in_job_context(
                    ImportHandler(
                        store=self.store,
                        client=self.client,
                        pacer=self.pacer,
                        settings=self.current,
                        metrics=self.metrics,
                        rejections=self.rejections,
                        tracing=tracing or NO_TRACING,
                    )
                )
            ),
            owner=owner,
            concurrency=settings.didit.max_in_flight,
            lease_s=max(60.0, settings.didit.timeout_s * 4),
            poll_interval_s=1.0,
            backoff=lambda attempts: backoff_s(attempts, base=2.0, cap=300.0, rng=rng),
            clock=time.time,
            fair_share=lambda: fair_share(
                self.current(), self.rejections.slowed(), pace_s=self.pacer.pace_s
            ),
        )
        self.sender = Sender()
        self.retry_alarm = Alarm(lambda: self.delivery_worker.notify())
        self.deliver_handler = DeliverHandler(
            store=self.store,
            sender=self.sender,
            settings=self.current,
            rng=rng,
            metrics=self.metrics,
            retry_scheduled=self.retry_alarm.at,
            tracing=tracing or NO_TRACING,
        )
        slowest = max((d.timeout_s for d in settings.destinations.values()), default=15.0)
        # Heartbeats hold a lease while a POST runs; its length is how soon a crashed process's
        # deliveries are resent by the next one (at least once).
        deliver_lease_s = min(max(slowest * 2, 5.0), 30.0)
        self.delivery_worker = Worker(
            self.store,
            kind=JobKind.DELIVER,
            handler=_in_job_context(self.deliver_handler),
            owner=owner,
            concurrency=delivery_concurrency(settings),
            lease_s=deliver_lease_s,
            poll_interval_s=0.5,
            backoff=lambda attempts: backoff_s(attempts, base=1.0, cap=300.0, rng=rng),
            clock=time.time,
            lane_caps=self.deliver_handler.lane_caps,
        )
        # Work made claimable by another replica (same database) wakes our workers at once.
        self.store.on_work(JobKind.IMPORT, self.import_worker.notify)
        self.store.on_work(JobKind.DELIVER, self.delivery_worker.notify)
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self._didit_verifier = auth.didit_webhook_verifier(settings)
        health = Health(store=self.store, workers_running=self._workers_running)
        self.metrics_endpoint = MetricsEndpoint(
            self.metrics,
            snapshot=lambda: store_snapshot(self.store),
            before_render=[PacerCounters(self.metrics, self.pacer)],
            readiness=health.ready,
        )
        self.operations = Operations(
            store=self.store,
            settings=self.current,
            reload=self.reload,
            on_retry=self.import_worker.notify,
            on_redeliver=self.delivery_worker.notify,
            quota=self._quota_use,
            alerts=self._alerts_raised,
        )
        self.app: BridgeApp = create_app(
            intake=Intake(
                live=lambda: self._live,
                store=self.store,
                on_accepted=self.import_worker.notify,
                draining=lambda: self.draining,
                metrics=self.metrics,
                tracing=tracing,
            ),
            health=health,
            didit_webhooks=DiditWebhooks(
                verifier=lambda: self._didit_verifier,
                store=self.store,
                settings=self.current,
                on_recorded=self.delivery_worker.notify,
            ),
            lifespan=self._lifespan,
            admin=Admin(live=lambda: self._live, operations=self.operations),
            console=Console(live=lambda: self._live, operations=self.operations),
            metrics=self.metrics_endpoint,
            openapi=OpenApi(),
            middleware=[Middleware(RequestLog)],
            ops_port=settings.server.ops_port,
        )

    def begin_draining(self) -> None:
        """From now on intake answers 503, so partners retry against a running replica."""
        self.draining = True

    def current(self) -> Settings:
        return self._live.settings

    def reload(self) -> Sequence[ConfigIssue]:
        """Re-read the config file: apply it whole (the issues are empty), or keep the old one.

        New notifications are routed and verified with the new settings; accepted ones keep the
        route stored with them. Keys in ``RESTART_ONLY`` take effect at the next start.
        """
        path = self.config_path
        if path is None:
            return (ConfigIssue("<config>", None, "", "the service was not started from a file"),)
        try:
            settings = config.load(path)
            verifiers = auth.verifiers_for(settings)
            didit_verifier = auth.didit_webhook_verifier(settings)
        except ConfigError as exc:
            issues: Sequence[ConfigIssue] = exc.issues
        except ValueError as exc:  # a key that validates but cannot be used (a JWKS file)
            issues = (ConfigIssue(str(path), None, "", str(exc)),)
        else:
            self.redactor.add_secrets(*secrets_of(settings))
            waiting = _restart_only_changes(self._live.settings, settings)
            self._live = LiveConfig(settings=settings, verifiers=verifiers)
            self._didit_verifier = didit_verifier
            self._reloads.labels(result="applied").inc()
            log.info("config_reloaded", path=str(path), needs_restart=waiting)
            self.import_worker.notify()
            # A destination added (or given more slots) gets its own slots at once.
            self.delivery_worker.resize(delivery_concurrency(settings))
            self.delivery_worker.notify()
            return ()
        self._reloads.labels(result="refused").inc()
        self.metrics.alerts.labels(kind="config_reload_refused").inc()
        log.error("config_reload_refused", path=str(path), issues=[str(i) for i in issues])
        return issues

    def request_reload(self) -> None:
        """Reload on the event loop (safe to call from a signal handler)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self.reload)

    def _observe_didit(self, exchange: didit.Exchange) -> None:
        if exchange.path == didit.IMPORT_PATH:
            self.metrics.import_latency.observe(exchange.latency_s)
        if exchange.http_status == 429:
            self.metrics.upstream_429.inc()

    def _quota_use(self) -> QuotaUse:
        return QuotaUse(
            limit_per_minute=self.current().didit.rate_limit_per_minute,
            budget_per_minute=self.pacer.budget,
            paused_until=self.pacer.paused_until,
            waits=self.pacer.waits_total,
        )

    def _alerts_raised(self) -> dict[str, int]:
        """Alerts raised since this process started, by kind."""
        return {
            sample.labels["kind"]: int(sample.value)
            for family in self.metrics.alerts.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }

    def _workers_running(self) -> bool:
        # Draining counts as not running: /readyz answers 503 so load balancers look elsewhere.
        return (
            not self.draining and bool(self._tasks) and not any(task.done() for task in self._tasks)
        )

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        try:
            await self.store.ping()  # a PostgreSQL store connects and migrates here
        except StoreUnavailable as exc:
            log.warning("store_unavailable_at_start", error=exc.message)
        self._tasks = [
            asyncio.create_task(self.import_worker.run(), name="import-worker"),
            asyncio.create_task(self.delivery_worker.run(), name="delivery-worker"),
            asyncio.create_task(self._sweep_tokens(), name="token-sweeper"),
            asyncio.create_task(
                sweep_history(
                    self.store,
                    retention_days=lambda: self.current().store.retention_days,
                    metrics=self.metrics,
                ),
                name="history-sweeper",
            ),
        ]
        log.info("bridge_started", version=__version__, store=store_location(self.settings))
        try:
            yield
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop claiming, let in-flight work finish within the deadline, release the rest."""
        self.draining = True
        self.pacer.close()  # imports not yet sent are released now, not at the deadline
        await asyncio.gather(
            self.import_worker.stop(STOP_DEADLINE_S), self.delivery_worker.stop(STOP_DEADLINE_S)
        )
        self.retry_alarm.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()
        await self.sender.aclose()
        await self.store.close()
        if self.tracing is not None:
            # Blocks while the last spans go out (the exporter's own timeout bounds it).
            await asyncio.to_thread(self.tracing.shutdown)
        log.info("bridge_stopped")

    def _then_wake_deliveries(
        self, handler: Callable[[Job], Awaitable[JobResult]]
    ) -> Callable[[Job], Awaitable[JobResult]]:
        """An import may have written deliveries: the deliver worker claims them at once."""

        async def run(job: Job) -> JobResult:
            try:
                return await handler(job)
            finally:
                self.delivery_worker.notify()

        return run

    async def _sweep_tokens(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_SWEEP_INTERVAL_S)
            try:
                erased = await self.store.erase_stale_tokens()
            except StoreUnavailable:
                log.warning("token_sweep_failed")
                continue
            if erased:
                self.metrics.token_erasures.inc(erased)
                log.info("tokens_erased", count=erased)


def store_location(settings: Settings) -> str:
    """Where the store is, for people: a SQLite file's absolute path (a relative URL is relative
    to the working directory), or the URL without its password."""
    path = sqlite_path(settings.store.url)
    if path is not None:
        return str(path)
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", settings.store.url)


def _in_job_context(
    handler: Callable[[Job], Awaitable[JobResult]],
) -> Callable[[Job], Awaitable[JobResult]]:
    """Start each job attempt's log context afresh; the handler binds what it learns
    (notification id, partner, rule, outcome) and the worker's line for the attempt shows it."""

    async def run(job: Job) -> JobResult:
        start_log_context(job_kind=job.kind.value, job_id=job.id, attempts=job.attempts)
        return await handler(job)

    return run


def _restart_only_changes(old: Settings, new: Settings) -> list[str]:
    changed = []
    for section, key in RESTART_ONLY:
        if getattr(getattr(old, section), key) != getattr(getattr(new, section), key):
            changed.append(f"{section}.{key}")
    if old.telemetry != new.telemetry:  # an optional section: compared whole
        changed.append("telemetry")
    return changed
