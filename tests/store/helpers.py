"""Values shared by the store and worker tests."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Sequence
from typing import Any

from bridge.store import NewNotification, Store
from bridge.store._writer import GroupCommitWriter
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore
from bridge.types import Route, SessionKind

START = 1_800_000_000.0


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


ROUTE = Route(
    rule="acme-users",
    workflow_id="3c5b9a2e-0000-4000-8000-000000000001",
    vendor_data="acme:cust-1",
    trust_review=False,
    destinations=("crm", "audit"),
)


def notification(
    key: str = "app-1:session-1",
    *,
    message_id: str | None = None,
    deadline: float | None = START + 3_600,
    partner: str = "acme",
    token: str = "header.claims.signature",  # noqa: S107 - a fake test token
) -> NewNotification:
    return NewNotification(
        partner=partner,
        partner_event_id=f"evt-{key}",
        message_id=message_id,
        business_key=key,
        token=token,
        token_sha256=f"sha-of-{token}",
        session_kind=SessionKind.USER,
        source_application_id="app-1",
        source_session_id=key,
        deadline=deadline,
        route=ROUTE,
    )


async def in_one_group(writer: GroupCommitWriter, calls: Sequence[Awaitable[Any]]) -> list[Any]:
    """Await ``calls`` queued behind a blocked commit, so they form one group (one run)."""
    started, gate = threading.Event(), threading.Event()

    def block(_connection: sqlite3.Connection) -> bool:
        started.set()
        return gate.wait(5)

    blocker = asyncio.ensure_future(writer.run(block))
    assert await asyncio.to_thread(started.wait, 5)
    gathered = asyncio.gather(*calls, return_exceptions=True)
    for _ in range(200):
        await asyncio.sleep(0)
        if writer._queue.qsize() == len(calls):
            break
    assert writer._queue.qsize() == len(calls)
    commits = writer.commits
    gate.set()
    results = await gathered
    assert await blocker
    assert writer.commits == commits + 2  # the blocker's group, then every call in one
    return list(results)


async def accepted_in_one_group(store: Store, news: Sequence[NewNotification]) -> list[Any]:
    """Accept ``news`` so that the store commits them as one group (one transaction)."""
    if isinstance(store, SqliteStore):
        return await in_one_group(store._writer, [store.accept(new) for new in news])
    assert isinstance(store, PostgresStore)
    await store.migrate()
    commits = store._accepts.commits
    results = await asyncio.gather(*(store.accept(new) for new in news), return_exceptions=True)
    assert store._accepts.commits == commits + 1
    return list(results)
