"""``recover_orphans``: a restarted worker takes over a dead process's jobs at once."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bridge.store import JobKind, Store
from bridge.store._pg_owners import lock_key
from tests.store.backends import StoreTarget
from tests.store.helpers import FakeClock, crash_a_claiming_process, notification
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio

#: The heartbeat the live owners of these tests promise: far longer than any test takes.
HEARTBEAT_S = 60.0


async def test_the_jobs_of_a_killed_process_are_requeued_with_their_attempt_kept(
    store: Store, target: StoreTarget, clock: FakeClock
) -> None:
    await store.accept(notification("k1"))
    await store.accept(notification("k2"))
    crashed = await asyncio.to_thread(crash_a_claiming_process, target, clock())
    assert crashed.stdout.strip() == "2", crashed.stderr
    assert await store.claim(JobKind.IMPORT, owner="next", lease_s=30, limit=10) == []

    # PostgreSQL: once the dead owner is past its heartbeats and a grace without checking in
    # (its lock alone does not tell it from a live one whose session was cut).
    await wait_until_async(
        lambda: store.recover_orphans("next", heartbeat_s=HEARTBEAT_S),
        "the dead owner's jobs requeued",
        holds=lambda n: n == 2,
    )

    jobs = await store.claim(JobKind.IMPORT, owner="next", lease_s=30, limit=10)
    assert sorted(job.ref for job in jobs) == sorted(
        [n.id for n in await store.list_notifications()]
    )
    assert {job.attempts for job in jobs} == {2}  # the crashed claim still counts
    assert await store.recover_orphans("next", heartbeat_s=HEARTBEAT_S) == 0


async def test_a_live_owner_and_an_unregistered_one_keep_their_jobs(
    open_: Callable[[], Store],
) -> None:
    first, second = open_(), open_()
    await first.accept(notification("k1"))
    await first.accept(notification("k2"))
    assert await first.recover_orphans("alive", heartbeat_s=HEARTBEAT_S) == 0
    await first.claim(JobKind.IMPORT, owner="alive", lease_s=3600)
    await first.claim(JobKind.IMPORT, owner="never-registered", lease_s=3600)

    assert await second.recover_orphans("newcomer", heartbeat_s=HEARTBEAT_S) == 0
    assert await second.claim(JobKind.IMPORT, owner="newcomer", lease_s=30) == []


async def test_an_owner_registered_by_two_workers_at_once_stays_alive(
    open_: Callable[[], Store],
) -> None:
    """A process's import and deliver workers register its one owner at the same moment."""
    first, second = open_(), open_()
    await first.accept(notification("k1"))
    registered = await asyncio.gather(
        *(first.recover_orphans("alive", heartbeat_s=HEARTBEAT_S) for _ in range(2))
    )
    assert registered == [0, 0]
    assert len(await first.claim(JobKind.IMPORT, owner="alive", lease_s=3600)) == 1
    gc.collect()  # nothing the registration needs may hang on a connection left for collection

    assert await second.recover_orphans("newcomer", heartbeat_s=HEARTBEAT_S) == 0
    assert await second.claim(JobKind.IMPORT, owner="newcomer", lease_s=30) == []


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_owner_that_stopped_cleanly_leaves_no_lock_behind(
    open_: Callable[[], Store], target: StoreTarget
) -> None:
    first = open_()
    await first.recover_orphans("w1", heartbeat_s=HEARTBEAT_S)
    await first.close()
    second = open_()
    await second.accept(notification("k1"))
    assert await second.recover_orphans("w2", heartbeat_s=HEARTBEAT_S) == 0
    owners_dir = Path(target.url.removeprefix("sqlite:///") + ".owners")
    assert len(_lock_files(owners_dir)) == 1  # w2's own lock; w1's went with it
    await second.close()
    assert _lock_files(owners_dir) == []


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_owner_that_stopped_cleanly_is_forgotten_and_its_lock_freed(
    open_: Callable[[], Store], target: StoreTarget
) -> None:
    first = open_()
    await first.recover_orphans("w1", heartbeat_s=HEARTBEAT_S)
    assert await _registered_owners(target) == ["w1"]
    assert not await _lock_free(target, "w1")  # held while first is open
    await first.close()
    assert await _registered_owners(target) == []
    assert await _lock_free(target, "w1")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_killed_owner_without_jobs_is_forgotten_by_the_next_recovery(
    store: Store, target: StoreTarget, clock: FakeClock
) -> None:
    """Registered owners do not pile up with restarts: a dead one is forgotten, jobs or not."""
    crashed = await asyncio.to_thread(crash_a_claiming_process, target, clock())
    assert crashed.stdout.strip() == "0", crashed.stderr
    assert await _registered_owners(target) == ["crashed-owner"]

    async def forgotten() -> list[str]:
        assert await store.recover_orphans("next", heartbeat_s=HEARTBEAT_S) == 0
        return await _registered_owners(target)

    await wait_until_async(forgotten, "the dead owner forgotten", holds=lambda o: o == ["next"])


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_owner_whose_session_was_cut_holds_its_lock_again_at_its_next_call(
    store: Store, target: StoreTarget
) -> None:
    """The server ended every connection of the store (an operator, a failover): the owner's
    lock went with its session, and the next recovery takes it again instead of failing."""
    assert await store.recover_orphans("alive", heartbeat_s=HEARTBEAT_S) == 0
    await _terminate_connections(target)
    assert await _lock_free(target, "alive")

    assert await store.recover_orphans("alive", heartbeat_s=HEARTBEAT_S) == 0
    assert not await _lock_free(target, "alive")
    assert await _registered_owners(target) == ["alive"]


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_live_owner_whose_session_was_cut_keeps_its_jobs(
    open_: Callable[[], Store], target: StoreTarget
) -> None:
    """The owner's lock went with its session (a server restart, a network blip) while its
    import was in flight: until it takes the lock again at its next heartbeat, a peer must not
    take its job, or the share would be imported twice."""
    owner, peer = open_(), open_()
    await owner.accept(notification("k1"))
    assert await owner.recover_orphans("A", heartbeat_s=HEARTBEAT_S) == 0
    [job] = await owner.claim(JobKind.IMPORT, owner="A", lease_s=3600)
    await _terminate_connections(target)
    assert await _lock_free(target, "A")

    assert await peer.recover_orphans("B", heartbeat_s=HEARTBEAT_S) == 0
    assert await peer.claim(JobKind.IMPORT, owner="B", lease_s=30) == []
    assert await owner.recover_orphans("A", heartbeat_s=HEARTBEAT_S) == 0  # its next heartbeat
    assert not await _lock_free(target, "A")
    assert await owner.extend_lease(job, lease_s=3600)
    assert await _registered_owners(target) == ["A", "B"]


async def test_an_owner_name_in_use_by_a_live_store_is_not_taken_twice(
    open_: Callable[[], Store],
) -> None:
    """A second process claiming to be a live owner cannot make that owner look alive twice,
    nor judge it gone: the live owner's jobs stay its own."""
    first, second = open_(), open_()
    await first.accept(notification("k1"))
    assert await first.recover_orphans("alive", heartbeat_s=HEARTBEAT_S) == 0
    await first.claim(JobKind.IMPORT, owner="alive", lease_s=3600)
    assert await second.recover_orphans("other", heartbeat_s=HEARTBEAT_S) == 0
    assert await second.claim(JobKind.IMPORT, owner="other", lease_s=30) == []


def _lock_files(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir()]


async def _registered_owners(target: StoreTarget) -> list[str]:
    async with await psycopg.AsyncConnection.connect(target.url) as connection:
        cursor = await connection.execute(
            sql.SQL("SELECT owner FROM {}.worker_owners ORDER BY owner").format(
                sql.Identifier(str(target.schema))
            )
        )
        return [str(row[0]) for row in await cursor.fetchall()]


async def _terminate_connections(target: StoreTarget) -> None:
    """End the store's sessions, and return once they are gone."""
    query = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = %s AND pid <> pg_backend_pid()"
    )
    async with await psycopg.AsyncConnection.connect(target.url, autocommit=True) as connection:

        async def terminated() -> int:
            cursor = await connection.execute(query, [f"share-bridge {target.schema}"])
            row = await cursor.fetchone()
            return 0 if row is None else int(row[0])

        await wait_until_async(
            terminated, "the store's sessions gone", holds=lambda n: n == 0, poll_s=0.01
        )


async def _lock_free(target: StoreTarget, owner: str) -> bool:
    key = lock_key(str(target.schema), owner)
    async with await psycopg.AsyncConnection.connect(target.url, autocommit=True) as connection:
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", [key])
        row = await cursor.fetchone()
        assert row is not None
        if row[0]:
            await connection.execute("SELECT pg_advisory_unlock(%s)", [key])
        return bool(row[0])
