"""Wake-ups across processes: PostgreSQL's LISTEN/NOTIFY on one channel per schema.

A transaction that makes work claimable (accepted notifications, deliveries written, a job
requeued) sends ``pg_notify(channel, kind)``, delivered to every listener when it commits. Each
store that was asked for wake-ups keeps one connection listening and calls the callbacks
registered for that kind, so a notification accepted on one replica is claimed by whichever
replica is free at once. A notification can be missed (the listening connection was down): the
workers' polling stays the fallback, and every reconnect wakes everyone once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping
from typing import Any

import psycopg
import structlog
from psycopg import sql

from bridge.store.model import JobKind

log = structlog.get_logger()

RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def channel_name(schema: str) -> str:
    return f"share_bridge_{schema}"[:63]


class Wakeups:
    """The callbacks of one store, and the task listening for them."""

    def __init__(self, conninfo: str, options: Mapping[str, Any], schema: str) -> None:
        self._conninfo = conninfo
        self._options: dict[str, Any] = dict(options)
        self.channel = channel_name(schema)
        self._callbacks: dict[JobKind, list[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, kind: JobKind, wake: Callable[[], None]) -> None:
        self._callbacks.setdefault(kind, []).append(wake)

    def start(self) -> None:
        """Listen, if anyone asked for wake-ups (call from the event loop)."""
        if self._callbacks and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="store-wakeups")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _wake(self, kinds: Collection[JobKind]) -> None:
        for kind in kinds:
            for wake in self._callbacks.get(kind, ()):
                wake()

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, **self._options
                ) as connection:
                    listen = sql.SQL("LISTEN {}").format(sql.Identifier(self.channel))
                    await connection.execute(listen)
                    failures = 0
                    self._wake(list(JobKind))  # whatever was missed while not listening
                    async for notify in connection.notifies():
                        with contextlib.suppress(ValueError):
                            self._wake([JobKind(notify.payload)])
            except (psycopg.Error, OSError) as exc:
                delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                failures += 1
                log.warning("store_wakeups_lost", error=type(exc).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
