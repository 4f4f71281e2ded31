"""``recover_orphans``: a restarted worker takes over a dead process's jobs at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.store import JobKind, Store
from tests.store.helpers import FakeClock, notification

pytestmark = pytest.mark.anyio

#: A child process that registers as "crashed-owner", claims every import job and dies by
#: SIGKILL: nothing released, the leases held for an hour.
_CRASH = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from bridge.store import JobKind, open_store

    async def main():
        store = open_store(sys.argv[1], clock=lambda: float(sys.argv[2]))
        await store.recover_orphans("crashed-owner")
        jobs = await store.claim(JobKind.IMPORT, owner="crashed-owner", lease_s=3600, limit=10)
        print(len(jobs), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_the_jobs_of_a_killed_process_are_requeued_with_their_attempt_kept(
    store: Store, store_url: str, clock: FakeClock
) -> None:
    await store.accept(notification("k1"))
    await store.accept(notification("k2"))
    crashed = await asyncio.to_thread(_crash_a_claiming_process, store_url, clock())
    assert crashed.stdout.strip() == "2", crashed.stderr
    assert await store.claim(JobKind.IMPORT, owner="next", lease_s=30, limit=10) == []

    assert await store.recover_orphans("next") == 2

    jobs = await store.claim(JobKind.IMPORT, owner="next", lease_s=30, limit=10)
    assert sorted(job.ref for job in jobs) == sorted(
        [n.id for n in await store.list_notifications()]
    )
    assert {job.attempts for job in jobs} == {2}  # the crashed claim still counts
    assert await store.recover_orphans("next") == 0


async def test_a_live_owner_and_an_unregistered_one_keep_their_jobs(
    open_: Callable[[], Store],
) -> None:
    first, second = open_(), open_()
    await first.accept(notification("k1"))
    await first.accept(notification("k2"))
    assert await first.recover_orphans("alive") == 0
    await first.claim(JobKind.IMPORT, owner="alive", lease_s=3600)
    await first.claim(JobKind.IMPORT, owner="never-registered", lease_s=3600)

    assert await second.recover_orphans("newcomer") == 0
    assert await second.claim(JobKind.IMPORT, owner="newcomer", lease_s=30) == []


async def test_an_owner_that_stopped_cleanly_leaves_no_lock_behind(
    open_: Callable[[], Store], store_url: str
) -> None:
    first = open_()
    await first.recover_orphans("w1")
    await first.close()
    second = open_()
    await second.accept(notification("k1"))
    assert await second.recover_orphans("w2") == 0
    owners_dir = Path(store_url.removeprefix("sqlite:///") + ".owners")
    assert len(_lock_files(owners_dir)) == 1  # w2's own lock; w1's went with it
    await second.close()
    assert _lock_files(owners_dir) == []


def _crash_a_claiming_process(store_url: str, now: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", _CRASH, store_url, str(now)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _lock_files(directory: Path) -> list[str]:
    return [path.name for path in directory.iterdir()]
