"""Values shared by the store and worker tests."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from bridge.store import NewNotification, Store
from bridge.store._writer import GroupCommitWriter
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore
from bridge.types import Route, SessionKind
from tests.store.backends import StoreTarget

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


#: A child process that accepts ``argv[3]`` notifications, registers as "crashed-owner" (no
#: heartbeat: silent once dead), claims every import job and dies by SIGKILL: nothing released,
#: the leases held for an hour.
_CRASH = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from bridge.store import JobKind
    from tests.store.backends import StoreTarget
    from tests.store.helpers import notification

    async def main():
        store = StoreTarget.from_json(sys.argv[1]).open(lambda: float(sys.argv[2]))
        for number in range(int(sys.argv[3])):
            await store.accept(notification(f"crashed-{number}"))
        await store.recover_orphans("crashed-owner", heartbeat_s=0)
        jobs = await store.claim(JobKind.IMPORT, owner="crashed-owner", lease_s=3600, limit=10)
        print(len(jobs), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


def crash_a_claiming_process(
    target: StoreTarget, now: float, *, accept: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run the crashing child on ``target`` with its clock at ``now``; its output (the number
    of jobs it claimed)."""
    command = [sys.executable, "-c", _CRASH, target.to_json(), str(now), str(accept)]
    root = Path(__file__).parents[2]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
