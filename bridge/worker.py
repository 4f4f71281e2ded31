"""The job loop: claim, lease, dispatch, and map each handler's result to the store, in one place.

A ``Worker`` serves one job kind. It claims up to ``concurrency`` jobs (each lane within the
cap ``lane_caps`` names at that claim), runs the handler for each in its own task, extends the
leases of running jobs every ``lease_s / 3`` (having first, as at start, checked in and taken
over the jobs of owners that died: ``store.recover_orphans``), and records what the handler
returned:

- ``Done``: the handler already finished the job in its own final transaction (for example
  ``store.record_outcome``); nothing more to write.
- ``Complete``: ``store.complete``.
- ``Retry(error, delay_s, not_after)``: ``store.retry`` after ``delay_s`` or the backoff
  policy's delay, but no later than ``not_after``.
- ``Bury(error)``: ``store.bury``.
- any unexpected exception: retried with the backoff policy (buried once ``max_attempts`` is
  used up, when set), logged with its traceback.

A claim that failed (``StoreUnavailable``) may have committed all the same: before the next
claim, the jobs leased to this owner that it does not run are put back
(``store.release_lost_claims``). A result the store cannot take is offered again every
``record_retry_s`` while the lease lasts, so a job outlives a database outage without waiting
for its lease to lapse.

A store answer of False means another worker owns the job now: logged as ``lease_lost``.
The result types live in ``bridge.types`` so handlers (``bridge.pipeline``, a sibling) can
return them without importing this module.
The worker knows nothing of Didit or destinations.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Mapping

import structlog

from bridge.errors import StoreUnavailable
from bridge.store import FairShare, Job, JobKind, Store
from bridge.types import Bury, Complete, Done, JobResult, Release, Retry

__all__ = [
    "Bury",
    "Complete",
    "Done",
    "Handler",
    "JobResult",
    "Release",
    "Retry",
    "Worker",
    "backoff_s",
]

log = structlog.get_logger()


Handler = Callable[[Job], Awaitable[JobResult]]


def backoff_s(attempts: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-1))]."""
    exponent = min(max(attempts - 1, 0), 60)  # 2**60 exceeds any cap; avoids float overflow
    return rng.uniform(0.0, min(cap, base * 2.0**exponent))


class Worker:
    """Claims and runs jobs of one kind until ``stop``."""

    def __init__(
        self,
        store: Store,
        *,
        kind: JobKind,
        handler: Handler,
        owner: str,
        concurrency: int,
        lease_s: float,
        poll_interval_s: float,
        backoff: Callable[[int], float],
        clock: Callable[[], float],
        max_attempts: int | None = None,
        lane_caps: Callable[[], Mapping[str, int]] = dict,
        fair_share: Callable[[], FairShare | None] = lambda: None,
        record_retry_s: float = 0.5,
    ) -> None:
        if concurrency < 1 or lease_s <= 0 or poll_interval_s <= 0:
            raise ValueError("concurrency, lease_s and poll_interval_s must be positive")
        self._store = store
        self._kind = kind
        self._handler = handler
        self._owner = owner
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._heartbeat_s = lease_s / 3
        self._poll_interval_s = poll_interval_s
        self._backoff = backoff
        self._clock = clock
        self._max_attempts = max_attempts
        self._lane_caps = lane_caps
        self._fair_share = fair_share
        self._record_retry_s = record_retry_s  # between tries to record a result, store down
        self._in_flight: dict[asyncio.Task[None], Job] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._claiming_over = asyncio.Event()  # run() claims no more
        self._drained = asyncio.Event()  # stop() finished or released every job
        self._running = False
        self._claims_unsettled = False  # a claim failed: it may have committed all the same
        self._log = log.bind(kind=kind.value, owner=owner)

    @property
    def in_flight(self) -> int:
        """How many handlers run now."""
        return len(self._in_flight)

    @property
    def concurrency(self) -> int:
        """How many handlers may run at once."""
        return self._concurrency

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` handlers from the next claim on (a reloaded config); the
        ones running go on. Fewer slots than running handlers: no claim until enough finish."""
        if concurrency < 1:
            raise ValueError("concurrency must be positive")
        if concurrency != self._concurrency:
            self._log.info("worker_resized", concurrency=concurrency, was=self._concurrency)
            self._concurrency = concurrency
            self._wake.set()

    def notify(self) -> None:
        """Claim now rather than at the next poll (e.g. intake accepted a notification)."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and dispatch until ``stop`` is called; return once ``stop`` has drained."""
        self._running = True
        heartbeat = asyncio.create_task(self._heartbeat(), name=f"heartbeat-{self._kind}")
        await self._recover_orphans()
        self._log.info("worker_started", concurrency=self._concurrency)
        try:
            while not self._stopping:
                self._wake.clear()  # before claiming, so a notify() during the claim is kept
                free = self._concurrency - len(self._in_flight)
                if free > 0 and await self._claim_and_start(free) == free:
                    continue  # a full batch: more may be waiting
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            self._claiming_over.set()
            await self._drained.wait()  # leases are still extended while stop() drains
        finally:
            self._claiming_over.set()
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def stop(self, deadline_s: float) -> None:
        """Stop claiming; let running handlers finish within ``deadline_s``; release the rest.

        A released job is queued again at once with its attempt refunded, so a restart picks
        it up immediately instead of waiting for its lease to lapse.
        """
        self._stopping = True
        self._wake.set()
        if self._running:
            await self._claiming_over.wait()
        try:
            released = await self._drain(deadline_s)
        finally:
            self._drained.set()
        self._log.info("worker_stopped", released=released)

    async def _drain(self, deadline_s: float) -> int:
        tasks = dict(self._in_flight)
        if not tasks:
            return 0
        _, unfinished = await asyncio.wait(tasks, timeout=deadline_s)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        released = 0
        for task in unfinished:
            job = tasks[task]
            try:
                if await self._store.release(job):
                    released += 1
                    self._log.info("job_released", job_id=job.id, ref=job.ref)
            except StoreUnavailable:
                self._log.warning("job_release_failed", job_id=job.id, ref=job.ref)
        return released

    async def _recover_orphans(self) -> None:
        """Take over at once the jobs of a predecessor that crashed (e.g. after a restart)."""
        try:
            recovered = await self._store.recover_orphans(
                self._owner, heartbeat_s=self._heartbeat_s
            )
        except StoreUnavailable as exc:
            self._log.warning("orphan_recovery_failed", error=exc.message)
            return
        if recovered:
            self._log.info("orphans_recovered", jobs=recovered)

    async def _claim_and_start(self, free: int) -> int:
        try:
            if self._claims_unsettled:
                await self._release_lost_claims()
            jobs = await self._store.claim(
                self._kind,
                owner=self._owner,
                lease_s=self._lease_s,
                limit=free,
                lane_caps=self._lane_caps(),
                skip_jobs=[job.id for job in self._in_flight.values()],
                fair_share=self._fair_share(),
            )
        except StoreUnavailable as exc:
            # The connection may have gone as the claim committed: its jobs would be leased to
            # us, run by no one, until their leases lapsed. Settled before the next claim.
            self._claims_unsettled = True
            self._log.warning("claim_failed", error=exc.message)
            return 0
        for job in jobs:
            task = asyncio.create_task(self._run_job(job), name=f"{self._kind}-{job.id}")
            self._in_flight[task] = job
            task.add_done_callback(self._finished)
        return len(jobs)

    async def _release_lost_claims(self) -> None:
        running = [job.id for job in self._in_flight.values()]
        released = await self._store.release_lost_claims(
            self._kind, owner=self._owner, running=running
        )
        self._claims_unsettled = False
        if released:
            self._log.warning("lost_claims_released", jobs=released)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()  # a slot is free

    async def _run_job(self, job: Job) -> None:
        job_log = self._log.bind(job_id=job.id, ref=job.ref, attempts=job.attempts)
        try:
            result = await self._handler(job)
        except Exception as exc:  # noqa: BLE001 - any failure of a handler is retried
            job_log.warning("job_crashed", error=type(exc).__name__, exc_info=True)
            result = self._after_crash(job, exc)
        held = await self._recorded(job, result, job_log)
        if held is None:
            return
        if not held:
            job_log.warning("lease_lost")
        else:
            job_log.info(_RESULT_EVENTS[type(result)], error=getattr(result, "error", None))

    async def _recorded(
        self, job: Job, result: JobResult, job_log: structlog.typing.FilteringBoundLogger
    ) -> bool | None:
        """Record ``result``, again and again while the store is unavailable, for as long as
        the lease lasts: after a database outage the job goes on at once instead of waiting
        for its lease to lapse. None: never recorded; the job is claimed again after that."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._lease_s
        while True:
            try:
                return await self._record(job, result)
            except StoreUnavailable as exc:
                if loop.time() + self._record_retry_s > give_up:
                    job_log.warning("job_result_not_recorded", error=exc.message)
                    return None
                job_log.info("job_result_waiting_for_store", error=exc.message)
            await asyncio.sleep(self._record_retry_s)

    def _after_crash(self, job: Job, exc: Exception) -> JobResult:
        error = f"{type(exc).__name__}: {exc}"[:500]
        if self._max_attempts is not None and job.attempts >= self._max_attempts:
            return Bury(error)
        return Retry(error)

    async def _record(self, job: Job, result: JobResult) -> bool:
        match result:
            case Done():
                return True
            case Complete():
                return await self._store.complete(job)
            case Retry(error=error, delay_s=delay_s, not_after=not_after):
                now = self._clock()
                delay = self._backoff(job.attempts) if delay_s is None else delay_s
                run_after = now + max(delay, 0.0)
                if not_after is not None:
                    run_after = max(now, min(run_after, not_after))
                return await self._store.retry(job, run_after=run_after, error=error)
            case Bury(error=error):
                return await self._store.bury(job, error=error)
            case Release(delay_s=wait_s):
                due = self._clock() + wait_s if wait_s > 0 else None
                return await self._store.release(job, run_after=due)

    async def _heartbeat(self) -> None:
        lost: set[int] = set()
        while True:
            await asyncio.sleep(self._heartbeat_s)
            # Not only at start: a process that died since is seen gone now, not when its leases
            # lapse, and our own liveness is taken again if the store lost it (a cut session).
            # First, so that our check-in is not late for the lease extensions of a slow store.
            await self._recover_orphans()
            lost &= {job.id for job in self._in_flight.values()}
            running = [job for job in self._in_flight.values() if job.id not in lost]
            answers = await asyncio.gather(
                *(self._store.extend_lease(job, lease_s=self._lease_s) for job in running),
                return_exceptions=True,
            )
            still_running = set(self._in_flight.values())
            for job, held in zip(running, answers, strict=True):
                if held is False and job in still_running:
                    lost.add(job.id)
                    self._log.warning("lease_lost", job_id=job.id, ref=job.ref)
                elif isinstance(held, BaseException):
                    self._log.warning("lease_extend_failed", job_id=job.id, error=str(held))


_RESULT_EVENTS: dict[type, str] = {
    Done: "job_done",
    Complete: "job_done",
    Retry: "job_retried",
    Bury: "job_buried",
    Release: "job_released",
}
