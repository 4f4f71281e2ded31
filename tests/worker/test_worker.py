"""The worker loop on a real SQLite store: bounds, heartbeats, result mapping, shutdown."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from bridge.errors import StoreUnavailable
from bridge.store import Job, JobKind, Store
from bridge.worker import Bury, Complete, Done, JobResult, Release, Retry, Worker, backoff_s
from tests.store.backends import StoreTarget
from tests.store.helpers import START, FakeClock, crash_a_claiming_process, notification
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio


class SpyStore:
    """Delegates to a real store and records claims and lease extensions."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.claims = 0
        self.skipped: list[set[int]] = []  # skip_jobs of each claim
        self.extended: list[tuple[int, bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def claim(self, kind: JobKind, **kwargs: Any) -> list[Job]:
        jobs = await self.inner.claim(kind, **kwargs)
        self.claims += 1
        self.skipped.append(set(kwargs.get("skip_jobs", ())))
        return jobs

    async def extend_lease(self, job: Job, *, lease_s: float) -> bool:
        held = await self.inner.extend_lease(job, lease_s=lease_s)
        self.extended.append((job.id, held))
        return held


class StoreDownFor(SpyStore):
    """A store that refuses to record the first ``refusals`` completions: unavailable."""

    def __init__(self, inner: Store, *, refusals: int) -> None:
        super().__init__(inner)
        self.refusals = refusals

    async def complete(self, job: Job) -> bool:
        if self.refusals > 0:
            self.refusals -= 1
            raise StoreUnavailable("the database is away")
        return await self.inner.complete(job)


class ClaimAnswerLost(SpyStore):
    """A store whose first claim commits but answers ``StoreUnavailable``."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.lost = 0

    async def claim(self, kind: JobKind, **kwargs: Any) -> list[Job]:
        jobs = await super().claim(kind, **kwargs)
        if self.claims == 1:
            self.lost = len(jobs)
            raise StoreUnavailable("the connection went as the claim committed")
        return jobs


def make_worker(
    store: Store | SpyStore,
    clock: FakeClock,
    handler: Callable[[Job], Awaitable[JobResult]],
    **overrides: Any,
) -> Worker:
    options: dict[str, Any] = {
        "kind": JobKind.IMPORT,
        "owner": "w1",
        "concurrency": 2,
        "lease_s": 30.0,
        "poll_interval_s": 0.01,
        "backoff": lambda attempts: 42.0,
        "clock": clock,
    }
    options.update(overrides)
    return Worker(cast(Store, store), handler=handler, **options)


async def accept(store: Store, count: int) -> list[str]:
    return [(await store.accept(notification(f"k{i}"))).id for i in range(count)]


class TestBackoff:
    class Highest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    def test_full_jitter_under_a_doubling_cap(self) -> None:
        """Each delay lies in [0, min(cap, base * 2^(attempts-1))]."""
        rng = random.Random(7)
        for attempts in range(1, 30):
            delay = backoff_s(attempts, base=0.5, cap=60.0, rng=rng)
            assert 0.0 <= delay <= min(60.0, 0.5 * 2 ** (attempts - 1))

    def test_the_ceiling_doubles_then_stops_at_the_cap(self) -> None:
        """With the highest draw: base, 2 base, 4 base, ... then the cap, even for huge n."""
        rng = self.Highest()
        ceilings = [backoff_s(n, base=1.0, cap=10.0, rng=rng) for n in (0, 1, 2, 3, 4, 5)]
        assert ceilings == [1.0, 1.0, 2.0, 4.0, 8.0, 10.0]
        assert backoff_s(100_000, base=1.0, cap=10.0, rng=rng) == 10.0


class TestDispatch:
    async def test_concurrency_bound_is_respected(self, store: Store, clock: FakeClock) -> None:
        """Never more than ``concurrency`` handlers run, and never more jobs are leased."""
        await accept(store, 10)
        running, peak, go = 0, 0, asyncio.Event()

        async def handler(job: Job) -> JobResult:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await go.wait()
            running -= 1
            return Complete()

        worker = make_worker(store, clock, handler, concurrency=3)
        task = asyncio.create_task(worker.run())
        await wait_until_async(lambda: running == 3, "running == 3")
        assert (await store.stats()).jobs["import"]["running"] == 3
        go.set()
        await wait_until_async(
            lambda: worker.in_flight == 0 and peak == 3, "the three handlers done"
        )
        await eventually_done(store, 10)
        await worker.stop(1.0)
        await task
        assert peak == 3

    async def test_results_are_mapped_to_the_store(self, store: Store, clock: FakeClock) -> None:
        """Complete -> done, Retry -> queued after its delay, Bury -> dead, Done -> untouched."""
        ids = await accept(store, 4)
        results: dict[str, JobResult] = {
            ids[0]: Complete(),
            ids[1]: Retry("HTTP 503", delay_s=7.0),
            ids[2]: Bury("token refused"),
            ids[3]: Done(),
        }

        async def handler(job: Job) -> JobResult:
            return results[job.ref]

        worker = make_worker(store, clock, handler, concurrency=4)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: len([e for e in logs if e["event"].startswith("job_")]) == 4,
                "four job_ log lines",
            )
            await worker.stop(1.0)
            await task
        jobs = (await store.stats()).jobs["import"]
        assert (jobs["done"], jobs["queued"], jobs["dead"], jobs["running"]) == (1, 1, 1, 1)
        clock.advance(6.9)
        assert await store.claim(JobKind.IMPORT, owner="x", lease_s=1) == []
        clock.advance(0.1)
        (retried,) = await store.claim(JobKind.IMPORT, owner="x", lease_s=1)
        assert retried.ref == ids[1]
        assert retried.last_error == "HTTP 503"

    async def test_retry_never_waits_past_not_after(self, store: Store, clock: FakeClock) -> None:
        """A retry's delay is cut to its ``not_after`` (e.g. the token's deadline)."""
        (nid,) = await accept(store, 1)

        async def handler(job: Job) -> JobResult:
            return Retry("HTTP 503", delay_s=600.0, not_after=START + 5)

        worker = make_worker(store, clock, handler)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: any(e["event"] == "job_retried" for e in logs), "a job_retried line"
            )
            await worker.stop(1.0)
            await task
        clock.advance(4.9)
        assert await store.claim(JobKind.IMPORT, owner="x", lease_s=1) == []
        clock.advance(0.1)
        (again,) = await store.claim(JobKind.IMPORT, owner="x", lease_s=1)
        assert again.ref == nid

    async def test_unexpected_exception_is_retried_with_backoff(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A crash is logged and retried after backoff(attempts); the token is never logged."""
        (nid,) = await accept(store, 1)
        seen: list[int] = []

        def backoff(attempts: int) -> float:
            seen.append(attempts)
            return 42.0

        async def handler(job: Job) -> JobResult:
            raise RuntimeError("boom")

        worker = make_worker(store, clock, handler, backoff=backoff)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: any(e["event"] == "job_retried" for e in logs), "a job_retried line"
            )
            await worker.stop(1.0)
            await task
        crashed = [e for e in logs if e["event"] == "job_crashed"]
        assert len(crashed) == 1
        assert crashed[0]["exc_info"] is True
        assert crashed[0]["ref"] == nid
        assert notification().token not in repr(logs)
        assert seen == [1]
        clock.advance(41.9)
        assert await store.claim(JobKind.IMPORT, owner="x", lease_s=1) == []
        clock.advance(0.1)
        (again,) = await store.claim(JobKind.IMPORT, owner="x", lease_s=1)
        assert again.attempts == 2
        assert again.last_error == "RuntimeError: boom"

    async def test_crashes_past_max_attempts_bury_the_job(
        self, store: Store, clock: FakeClock
    ) -> None:
        """With ``max_attempts`` used up, a crash buries the job instead of retrying it."""
        await accept(store, 1)

        async def handler(job: Job) -> JobResult:
            raise ValueError("always")

        worker = make_worker(store, clock, handler, max_attempts=1)
        task = asyncio.create_task(worker.run())
        await eventually_dead(store, 1)
        await worker.stop(1.0)
        await task

    async def test_notify_claims_without_waiting_for_the_poll(
        self, store: Store, clock: FakeClock
    ) -> None:
        """An idle worker with a long poll interval claims at once when notified."""
        spy = SpyStore(store)
        handled: list[str] = []

        async def handler(job: Job) -> JobResult:
            handled.append(job.ref)
            return Complete()

        worker = make_worker(spy, clock, handler, poll_interval_s=600.0)
        task = asyncio.create_task(worker.run())
        await wait_until_async(lambda: spy.claims >= 1, "spy.claims >= 1")
        ids = await accept(store, 1)
        worker.notify()
        await wait_until_async(lambda: handled == ids, "handled == ids")
        await worker.stop(1.0)
        await task

    async def test_lane_caps_reach_the_claim(self, store: Store, clock: FakeClock) -> None:
        """The worker hands the store the lane caps its callback names."""
        asked: list[Mapping[str, int]] = []

        class Recorder(SpyStore):
            async def claim(self, kind: JobKind, **kwargs: Any) -> list[Job]:
                asked.append(kwargs["lane_caps"])
                return await super().claim(kind, **kwargs)

        async def handler(job: Job) -> JobResult:
            return Complete()

        worker = make_worker(
            Recorder(store), clock, handler, kind=JobKind.DELIVER, lane_caps=lambda: {"crm": 2}
        )
        task = asyncio.create_task(worker.run())
        await wait_until_async(lambda: len(asked) >= 1, "len(asked) >= 1")
        await worker.stop(1.0)
        await task
        assert asked[0] == {"crm": 2}

    async def test_nonsense_settings_are_refused(self, store: Store, clock: FakeClock) -> None:
        """Concurrency, lease and poll interval must be positive."""

        async def handler(job: Job) -> JobResult:
            return Complete()

        with pytest.raises(ValueError, match="positive"):
            make_worker(store, clock, handler, concurrency=0)


class TestLeases:
    async def test_heartbeat_extends_running_leases(self, store: Store, clock: FakeClock) -> None:
        """While a handler runs past its first lease, heartbeats keep the job from others."""
        spy = SpyStore(store)
        stolen: list[Job] = []

        def extended(count: int) -> Callable[[], bool]:
            return lambda: len(spy.extended) >= count

        async def handler(job: Job) -> JobResult:
            for _ in range(3):
                clock.advance(0.2)
                # two more: the second was surely stamped after the clock moved
                await wait_until_async(extended(len(spy.extended) + 2), "two more lease extensions")
            stolen.extend(await store.claim(JobKind.IMPORT, owner="thief", lease_s=1))
            return Complete()

        await accept(store, 1)
        worker = make_worker(spy, clock, handler, lease_s=0.3)
        task = asyncio.create_task(worker.run())
        await eventually_done(store, 1)
        await worker.stop(1.0)
        await task
        assert clock.now - START > 0.3  # the first lease alone would have expired
        assert stolen == []
        assert all(held for _, held in spy.extended)

    async def test_lease_lost_is_logged_and_nothing_written(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A handler whose lease was taken over finishes, but its result is refused."""
        (nid,) = await accept(store, 1)
        thieves: list[Job] = []

        async def handler(job: Job) -> JobResult:
            clock.advance(31)
            thieves.extend(await store.claim(JobKind.IMPORT, owner="thief", lease_s=30))
            return Complete()

        worker = make_worker(store, clock, handler)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: any(e["event"] == "lease_lost" for e in logs), "a lease_lost line"
            )
            await worker.stop(1.0)
            await task
        (lost,) = [e for e in logs if e["event"] == "lease_lost"]
        assert lost["ref"] == nid
        assert len(thieves) == 1
        assert await store.complete(thieves[0])

    async def test_a_result_the_store_refused_is_recorded_once_it_is_back(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A database outage as the handler ends: the result is written once the store is back,
        within the lease, rather than the job waiting for its lease to lapse."""
        (nid,) = await accept(store, 1)
        down = StoreDownFor(store, refusals=2)

        async def handler(job: Job) -> JobResult:
            return Complete()

        worker = make_worker(down, clock, handler, record_retry_s=0.01)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: any(e["event"] == "job_done" for e in logs), "a job_done line"
            )
            await worker.stop(1.0)
            await task
        assert down.refusals == 0
        assert (await store.stats()).jobs["import"]["done"] == 1
        assert [e["ref"] for e in logs if e["event"] == "job_done"] == [nid]
        assert not any(e["event"] == "job_result_not_recorded" for e in logs)

    async def test_a_result_never_recorded_is_given_up_when_the_lease_ends(
        self, store: Store, clock: FakeClock
    ) -> None:
        (nid,) = await accept(store, 1)
        down = StoreDownFor(store, refusals=10**6)

        async def handler(job: Job) -> JobResult:
            return Complete()

        worker = make_worker(down, clock, handler, lease_s=0.05, record_retry_s=0.01)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: any(e["event"] == "job_result_not_recorded" for e in logs),
                "a job_result_not_recorded line",
            )
            await worker.stop(1.0)
            await task
        (given_up,) = [e for e in logs if e["event"] == "job_result_not_recorded"]
        assert given_up["ref"] == nid
        assert (await store.stats()).jobs["import"]["running"] == 1  # its lease will lapse

    async def test_the_jobs_of_a_process_that_dies_meanwhile_are_taken_over(
        self, store: Store, clock: FakeClock, tmp_path: Path
    ) -> None:
        """Not only at start: a process that claims jobs and dies while this worker runs gives
        them up long before their hour-long leases lapse."""
        handled: list[str] = []

        async def handler(job: Job) -> JobResult:
            handled.append(job.ref)
            return Complete()

        worker = make_worker(store, clock, handler, lease_s=0.3)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(
                lambda: any(e["event"] == "worker_started" for e in logs), "a worker_started line"
            )
            # The dying process's clock is ahead: its jobs are not due here until requeued.
            target = StoreTarget(url=f"sqlite:///{tmp_path}/bridge.db")
            crashed = await asyncio.to_thread(
                crash_a_claiming_process, target, START + 60, accept=2
            )
            assert crashed.stdout.strip() == "2", crashed.stderr
            await wait_until_async(lambda: len(handled) == 2, "two jobs handled")
            await worker.stop(1.0)
            await task
        assert sorted(handled) == sorted(n.id for n in await store.list_notifications())

    async def test_a_claim_whose_answer_was_lost_is_run_all_the_same(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The connection went as the claim committed: the jobs are leased to this worker, which
        never heard of them; it puts them back and runs them instead of waiting out the lease."""
        ids = await accept(store, 2)
        lossy = ClaimAnswerLost(store)
        handled: list[str] = []

        async def handler(job: Job) -> JobResult:
            handled.append(job.ref)
            return Complete()

        worker = make_worker(lossy, clock, handler)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(lambda: len(handled) == 2, "two jobs handled")
            await worker.stop(1.0)
            await task
        assert lossy.lost == 2
        assert sorted(handled) == sorted(ids)
        assert [e["jobs"] for e in logs if e["event"] == "lost_claims_released"] == [2]


class TestStop:
    async def test_stop_drains_then_releases_what_is_left(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Finishing handlers complete; hung ones are cancelled and released, attempt refunded."""
        ids = await accept(store, 2)
        quick_go, never = asyncio.Event(), asyncio.Event()
        started: list[str] = []
        cancelled: list[str] = []

        async def handler(job: Job) -> JobResult:
            started.append(job.ref)
            try:
                await (quick_go if job.ref == ids[0] else never).wait()
            except asyncio.CancelledError:
                cancelled.append(job.ref)
                raise
            return Complete()

        worker = make_worker(store, clock, handler)
        with capture_logs() as logs:
            task = asyncio.create_task(worker.run())
            await wait_until_async(lambda: len(started) == 2, "len(started) == 2")
            stopping = asyncio.create_task(worker.stop(0.3))
            await asyncio.sleep(0)
            quick_go.set()
            await stopping
            await task
        assert cancelled == [ids[1]]
        assert [e["ref"] for e in logs if e["event"] == "job_released"] == [ids[1]]
        assert (await store.stats()).jobs["import"]["done"] == 1
        (released,) = await store.claim(JobKind.IMPORT, owner="next", lease_s=30)
        assert released.ref == ids[1]
        assert released.attempts == 1

    async def test_a_released_job_is_queued_at_once_with_its_attempt_refunded(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Release (a handler sent away while stopping) gives the job back, nothing counted."""
        (nid,) = await accept(store, 1)
        calls: list[int] = []
        worker: Worker

        async def handler(job: Job) -> JobResult:
            calls.append(job.attempts)
            stopping.append(asyncio.create_task(worker.stop(1.0)))
            return Release()

        stopping: list[asyncio.Task[None]] = []
        worker = make_worker(store, clock, handler, concurrency=1)
        with capture_logs() as logs:
            await worker.run()
            await asyncio.gather(*stopping)
        assert calls == [1]
        assert [e["event"] for e in logs if e.get("ref") == nid] == ["job_released"]
        (again,) = await store.claim(JobKind.IMPORT, owner="next", lease_s=30)
        assert (again.ref, again.attempts, again.run_after) == (nid, 1, START)

    async def test_claims_leave_out_the_jobs_still_running_here(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A wall clock stepping forward must not hand a worker its own running job again."""
        await accept(store, 1)
        spy = SpyStore(store)
        release = asyncio.Event()
        running: list[int] = []

        async def handler(job: Job) -> JobResult:
            running.append(job.id)
            await release.wait()
            return Complete()

        worker = make_worker(spy, clock, handler, concurrency=2)
        task = asyncio.create_task(worker.run())
        await wait_until_async(lambda: len(running) == 1, "len(running) == 1")
        claims_before = spy.claims
        clock.advance(3600)  # every lease looks expired now
        worker.notify()
        await wait_until_async(lambda: spy.claims > claims_before, "spy.claims > claims_before")
        assert spy.skipped[-1] == {running[0]}
        assert running == [running[0]]  # not handed to a second handler
        release.set()
        await worker.stop(1.0)
        await task
        assert (await store.stats()).jobs["import"]["done"] == 1

    async def test_stop_before_run_returns(self, store: Store, clock: FakeClock) -> None:
        """A worker that never ran stops at once."""

        async def handler(job: Job) -> JobResult:
            return Complete()

        worker = make_worker(store, clock, handler)
        await worker.stop(0.1)
        await worker.run()  # returns at once: stopping was requested
        assert (await store.stats()).jobs["import"]["running"] == 0


async def eventually_done(store: Store, count: int) -> None:
    await eventually_status(store, "done", count)


async def eventually_dead(store: Store, count: int) -> None:
    await eventually_status(store, "dead", count)


async def eventually_status(store: Store, status: str, count: int) -> None:
    async def jobs() -> int:
        return (await store.stats()).jobs["import"][status]

    await wait_until_async(jobs, f"{count} {status} import jobs", holds=lambda n: n == count)
