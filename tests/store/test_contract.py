"""The store contract: one suite that every backend must pass (``backend`` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest

from bridge.errors import StoreUnavailable
from bridge.store import (
    AttemptEnd,
    AttemptKind,
    AttemptReport,
    DeliveryStatus,
    FinalOutcome,
    Job,
    JobKind,
    NewEvent,
    QueueGauges,
    RetryResult,
    StatusChange,
    Store,
)
from bridge.store.ids import new_id
from bridge.types import DiditSession, EventType, NotificationStatus, Reason
from tests.store.helpers import START, FakeClock, notification

pytestmark = pytest.mark.anyio

FINAL = [NotificationStatus.REJECTED, NotificationStatus.EXPIRED, NotificationStatus.FAILED]


async def claim_one(
    store: Store, *, owner: str = "w1", kind: JobKind = JobKind.IMPORT, lease_s: float = 30.0
) -> Job:
    jobs = await store.claim(kind, owner=owner, lease_s=lease_s)
    assert len(jobs) == 1, jobs
    return jobs[0]


def event(clock: FakeClock, *destinations: str, type_: EventType = EventType.IMPORTED) -> NewEvent:
    event_id = new_id("evt", clock())
    return NewEvent(
        id=event_id,
        type=type_,
        body=b'{"id": "%s", "type": "%s"}' % (event_id.encode(), type_.value.encode()),
        destinations=destinations,
    )


async def finish(store: Store, clock: FakeClock, status: NotificationStatus, key: str = "k") -> str:
    """Accept a notification and record ``status`` as its outcome."""
    accepted = await store.accept(notification(key))
    job = await claim_one(store)
    assert job.ref == accepted.id
    reason = Reason(code="some_reason", message="why", http_status=403)
    assert await store.record_outcome(job, FinalOutcome(status=status, reason=reason), [])
    return accepted.id


class TestAccept:
    async def test_stores_the_notification_with_its_route_and_an_import_job(
        self, store: Store
    ) -> None:
        """An accepted notification is pending, keeps its token and route, and has a job."""
        new = notification("app-1:s-1", message_id="msg-1")
        accepted = await store.accept(new)
        assert accepted.id.startswith("ntf_")
        assert len(accepted.id) == 30
        assert not accepted.duplicate
        stored = await store.load_notification(accepted.id)
        assert stored is not None
        assert stored.status is NotificationStatus.PENDING
        assert stored.token == new.token
        assert stored.token_sha256 == new.token_sha256
        assert stored.route == new.route
        assert stored.deadline == new.deadline
        assert stored.message_id == "msg-1"
        assert stored.received_at == START
        assert stored.finished_at is None
        job = await claim_one(store)
        assert (job.kind, job.ref, job.deadline) == (JobKind.IMPORT, accepted.id, new.deadline)

    async def test_unknown_notification_is_none(self, store: Store) -> None:
        """Loading an id that does not exist gives None."""
        assert await store.load_notification("ntf_nope") is None

    async def test_same_business_key_is_a_duplicate_with_the_original_id(
        self, store: Store
    ) -> None:
        """A second notification for a pending share answers the first one's id, no new job."""
        first = await store.accept(notification("k", message_id="m1"))
        second = await store.accept(notification("k", message_id="m2"))
        assert second.duplicate
        assert second.id == first.id
        assert len(await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=10)) == 1

    async def test_another_partners_notification_is_never_a_duplicate(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Claims are unverified: partner X's token carrying partner Y's claims, pending or
        imported, never makes Y's share a duplicate, alone or in one group commit."""
        imported = await finish(store, clock, NotificationStatus.IMPORTED, key="i")
        other = await store.accept(notification("i", partner="y"))
        assert not other.duplicate
        assert other.id != imported
        forged = await store.accept(notification("k", partner="x"))
        real = await store.accept(notification("k", partner="y"))
        assert not real.duplicate
        assert real.id != forged.id
        both = await asyncio.gather(
            store.accept(notification("j", partner="x")),
            store.accept(notification("j", partner="y")),
            store.accept(notification("j", partner="y")),
        )
        assert [answer.duplicate for answer in both] == [False, False, True]
        assert both[2].id == both[1].id

    async def test_imported_key_stays_a_duplicate(self, store: Store, clock: FakeClock) -> None:
        """After ``imported``, the same share is still a duplicate."""
        original = await finish(store, clock, NotificationStatus.IMPORTED)
        again = await store.accept(notification("k"))
        assert again.duplicate
        assert again.id == original

    @pytest.mark.parametrize("status", FINAL)
    async def test_key_is_accepted_again_after_a_final_failure(
        self, store: Store, clock: FakeClock, status: NotificationStatus
    ) -> None:
        """After rejected, expired or failed, a new token for the same share is accepted."""
        original = await finish(store, clock, status)
        again = await store.accept(notification("k"))
        assert not again.duplicate
        assert again.id != original

    async def test_same_message_id_is_a_duplicate_forever(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A replayed message id answers the original id, even after the original failed."""
        first = await store.accept(notification("k1", message_id="m1"))
        replay = await store.accept(notification("k2", message_id="m1"))
        assert replay.duplicate
        assert replay.id == first.id
        job = await claim_one(store)
        assert await store.record_outcome(job, FinalOutcome(status=NotificationStatus.FAILED), [])
        late = await store.accept(notification("k1", message_id="m1"))
        assert late.duplicate
        assert late.id == first.id

    async def test_find_message_answers_the_original_id(self, store: Store) -> None:
        """A partner's message id leads to its notification; unknown ones to None."""
        first = await store.accept(notification("k1", message_id="m1"))
        assert await store.find_message("acme", "m1") == first.id
        assert await store.find_message("acme", "m2") is None
        assert await store.find_message("globex", "m1") is None

    async def test_message_ids_are_per_partner(self, store: Store) -> None:
        """Two partners may use the same message id."""
        first = await store.accept(notification("k1", message_id="m1", partner="acme"))
        other = await store.accept(notification("k2", message_id="m1", partner="globex"))
        assert not other.duplicate
        assert other.id != first.id

    async def test_concurrent_accepts_are_all_committed(self, store: Store) -> None:
        """500 concurrent accepts (50 of them repeats) are committed once each."""
        news = [notification(f"k{i % 450}") for i in range(500)]
        results = await asyncio.gather(*(store.accept(new) for new in news))
        unique = {result.id for result in results if not result.duplicate}
        assert len(unique) == 450
        assert sum(result.duplicate for result in results) == 50
        by_key: dict[str, set[str]] = {}
        for new, result in zip(news, results, strict=True):
            by_key.setdefault(new.business_key, set()).add(result.id)
        assert all(len(ids) == 1 for ids in by_key.values())
        stats = await store.stats()
        assert stats.notifications["pending"] == 450
        assert stats.jobs["import"]["queued"] == 450

    async def test_identical_concurrent_accepts_make_one_notification(self, store: Store) -> None:
        """Many identical notifications at once: one is accepted, the rest are its duplicates."""
        results = await asyncio.gather(*(store.accept(notification("same")) for _ in range(40)))
        assert sum(not result.duplicate for result in results) == 1
        assert len({result.id for result in results}) == 1

    async def test_accepts_through_several_stores_of_one_database_dedupe_as_one(
        self, open_: Callable[[], Store]
    ) -> None:
        """Replicas: the same shares and message ids sent at once through three store
        instances make one notification each, and every duplicate answers its id."""
        stores = [open_() for _ in range(3)]
        news = [notification(f"k{i % 20}", message_id=f"m{i % 30}") for i in range(90)]
        results = await asyncio.gather(*(stores[i % 3].accept(new) for i, new in enumerate(news)))
        by_key: dict[str, set[str]] = {}
        by_message: dict[str, set[str]] = {}
        for new, result in zip(news, results, strict=True):
            by_key.setdefault(new.business_key, set()).add(result.id)
            by_message.setdefault(str(new.message_id), set()).add(result.id)
        assert all(len(ids) == 1 for ids in by_message.values())
        originals = {result.id for result in results if not result.duplicate}
        assert originals == {result.id for result in results}
        stored = await stores[1].list_notifications(limit=500)
        assert {n.id for n in stored} == originals
        assert len({n.business_key for n in stored}) == len(stored)  # one live per share
        for message, ids in by_message.items():
            assert await stores[2].find_message("acme", message) == next(iter(ids))
        assert (await stores[0].stats()).jobs["import"]["queued"] == len(originals)


class TestClaim:
    async def test_concurrent_claimers_claim_each_job_once(
        self, open_: Callable[[], Store]
    ) -> None:
        """Claimers on three store instances of one database never share a job."""
        stores = [open_() for _ in range(3)]
        for i in range(60):
            await stores[0].accept(notification(f"k{i}"))
        claimed: list[int] = []

        async def claimer(store: Store, owner: str) -> None:
            while jobs := await store.claim(JobKind.IMPORT, owner=owner, lease_s=30, limit=2):
                claimed.extend(job.id for job in jobs)

        await asyncio.gather(
            *(claimer(store, f"w{i}-{n}") for n, store in enumerate(stores) for i in range(4))
        )
        assert len(claimed) == 60
        assert len(set(claimed)) == 60

    async def test_claims_earliest_deadline_first_and_no_deadline_last(self, store: Store) -> None:
        """Imports come out by deadline, and a token without a deadline after all others."""
        for key, deadline in [("d300", 300.0), ("none", None), ("d100", 100.0), ("d200", 200.0)]:
            await store.accept(
                notification(key, deadline=None if deadline is None else START + deadline)
            )
        order = []
        while jobs := await store.claim(JobKind.IMPORT, owner="w", lease_s=30):
            order.append(jobs[0].deadline)
        assert order == [START + 100, START + 200, START + 300, None]
        again = [notification(f"b{d}", deadline=START + d) for d in (30, 10, 20)]
        for new in again:
            await store.accept(new)
        batch = await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=3)
        assert [job.deadline for job in batch] == [START + 10, START + 20, START + 30]

    async def test_attempts_count_at_claim_and_an_expired_lease_is_reclaimed(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A running job is not claimable until its lease expires; then attempts is 2."""
        await store.accept(notification())
        first = await claim_one(store, owner="a", lease_s=10)
        assert first.attempts == 1
        assert first.lease_expires_at == START + 10
        clock.advance(9)
        assert await store.claim(JobKind.IMPORT, owner="b", lease_s=10) == []
        clock.advance(2)
        second = await claim_one(store, owner="b", lease_s=10)
        assert (second.id, second.attempts, second.owner) == (first.id, 2, "b")

    async def test_claim_honours_run_after(self, store: Store, clock: FakeClock) -> None:
        """A retried job is claimable only from its run_after."""
        await store.accept(notification())
        job = await claim_one(store)
        assert await store.retry(job, run_after=START + 60, error="HTTP 503")
        assert await store.claim(JobKind.IMPORT, owner="w", lease_s=30) == []
        clock.advance(60)
        again = await claim_one(store)
        assert again.attempts == 2
        assert again.last_error == "HTTP 503"

    async def test_jobs_the_claimer_still_runs_are_never_claimed_again(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A wall clock stepping forward expires every lease at once; the owner's own running
        jobs (``skip_jobs``) stay its own, others' expired ones are taken."""
        await store.accept(notification("mine"))
        await store.accept(notification("theirs"))
        mine = await claim_one(store, owner="w1", lease_s=10)
        theirs = await claim_one(store, owner="w2", lease_s=10)
        clock.advance(3600)
        [taken] = await store.claim(JobKind.IMPORT, owner="w1", lease_s=10, skip_jobs=[mine.id])
        assert (taken.id, taken.owner) == (theirs.id, "w1")
        assert await store.extend_lease(mine, lease_s=10)  # still w1's first lease

    async def test_limit_below_one_claims_nothing(self, store: Store) -> None:
        """``limit=0`` is a no-op rather than an error."""
        await store.accept(notification())
        assert await store.claim(JobKind.IMPORT, owner="w", lease_s=30, limit=0) == []


class TestFencing:
    async def stolen(self, store: Store, clock: FakeClock) -> tuple[Job, Job]:
        """A job claimed by ``a`` whose lease expired and was claimed by ``b``."""
        await store.accept(notification())
        old = await claim_one(store, owner="a", lease_s=10)
        clock.advance(11)
        new = await claim_one(store, owner="b", lease_s=10)
        return old, new

    async def test_writes_after_lease_loss_are_refused(
        self, store: Store, clock: FakeClock
    ) -> None:
        """complete, retry, bury, release and extend_lease by the old owner write nothing."""
        old, new = await self.stolen(store, clock)
        assert not await store.complete(old)
        assert not await store.retry(old, run_after=START, error="x")
        assert not await store.bury(old, error="x")
        assert not await store.release(old)
        assert not await store.extend_lease(old, lease_s=1000)
        stats = await store.stats()
        assert stats.jobs["import"]["running"] == 1
        clock.advance(11)  # b's lease expires: nothing a did extended or reset it
        third = await claim_one(store, owner="c")
        assert third.attempts == 3
        assert third.last_error is None
        assert await store.complete(third)
        assert not await store.complete(new)

    async def test_same_owner_reclaiming_fences_its_own_old_lease(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The lease is (owner, attempt): an owner's stale handle is refused after it reclaims."""
        await store.accept(notification())
        old = await claim_one(store, owner="a", lease_s=10)
        clock.advance(11)
        new = await claim_one(store, owner="a", lease_s=10)
        assert not await store.complete(old)
        assert await store.complete(new)

    async def test_record_outcome_after_lease_loss_writes_nothing(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A fenced-out outcome leaves the notification pending with its token, no events."""
        old, new = await self.stolen(store, clock)
        outcome = FinalOutcome(
            status=NotificationStatus.IMPORTED, session=DiditSession(session_id="s")
        )
        assert not await store.record_outcome(old, outcome, [event(clock, "crm")])
        stored = await store.load_notification(old.ref)
        assert stored is not None
        assert stored.status is NotificationStatus.PENDING
        assert stored.token is not None
        timeline = await store.timeline(old.ref)
        assert timeline is not None
        assert timeline.events == ()
        assert timeline.deliveries == ()
        assert await store.claim(JobKind.DELIVER, owner="d", lease_s=30) == []
        assert await store.record_outcome(new, outcome, [])

    async def test_a_session_is_never_recorded_on_two_notifications(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The second outcome naming a session already another's writes nothing at all."""
        await store.accept(notification("a"))
        await store.accept(notification("b"))
        first, second = await claim_one(store), await claim_one(store)
        attempt = await store.begin_import_attempt(second)
        assert attempt is not None
        outcome = FinalOutcome(
            status=NotificationStatus.IMPORTED, session=DiditSession(session_id="s")
        )
        assert await store.record_outcome(first, outcome, [])
        assert await store.sessions_recorded(["s", "t"], other_than=second.ref) == {"s"}
        assert await store.sessions_recorded(["s"], other_than=first.ref) == frozenset()
        ending = AttemptEnd(attempt=attempt, http_status=200, result="x", latency_ms=1)
        assert not await store.record_outcome(second, outcome, [event(clock)], ending=ending)
        stored = await store.load_notification(second.ref)
        assert stored is not None
        assert stored.status is NotificationStatus.PENDING
        [unended] = await store.list_import_attempts(second.ref)
        assert unended.ended_at is None
        assert await store.extend_lease(second, lease_s=30)  # the job is still held, running

    async def test_an_outcome_ends_the_attempt_that_decided_it(
        self, store: Store, clock: FakeClock
    ) -> None:
        await store.accept(notification())
        job = await claim_one(store)
        attempt = await store.begin_import_attempt(job)
        assert attempt is not None
        outcome = FinalOutcome(
            status=NotificationStatus.IMPORTED, session=DiditSession(session_id="s")
        )
        ending = AttemptEnd(attempt=attempt, http_status=201, result="imported", latency_ms=7)
        assert await store.record_outcome(job, outcome, [], ending=ending)
        [ended] = await store.list_import_attempts(job.ref)
        assert (ended.ended_at, ended.http_status, ended.result, ended.latency_ms) == (
            START,
            201,
            "imported",
            7,
        )

    async def test_attempt_records_after_lease_loss_are_refused(
        self, store: Store, clock: FakeClock
    ) -> None:
        """begin/end_import_attempt by the old owner write nothing."""
        old, new = await self.stolen(store, clock)
        assert await store.begin_import_attempt(old) is None
        attempt = await store.begin_import_attempt(new)
        assert attempt == 1
        assert not await store.end_import_attempt(
            old, 1, http_status=201, result="imported", latency_ms=5
        )
        attempts = await store.list_import_attempts(new.ref)
        assert len(attempts) == 1
        assert attempts[0].ended_at is None

    async def test_release_requeues_at_once_and_refunds_the_attempt(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A released job is claimable immediately, with the same attempt number."""
        await store.accept(notification())
        job = await claim_one(store, lease_s=300)
        assert await store.release(job)
        again = await claim_one(store)
        assert again.id == job.id
        assert again.attempts == 1

    async def test_release_until_a_time_refunds_the_attempt_and_waits(
        self, store: Store, clock: FakeClock
    ) -> None:
        await store.accept(notification())
        job = await claim_one(store)
        assert await store.release(job, run_after=START + 60)
        clock.advance(59)
        assert await store.claim(JobKind.IMPORT, owner="w", lease_s=30) == []
        clock.advance(1)
        again = await claim_one(store)
        assert (again.id, again.attempts) == (job.id, 1)

    async def test_lost_claims_of_an_owner_are_requeued_but_those_it_runs(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A claim that committed while its answer was lost: the jobs its owner does not run go
        back at once with their attempt refunded; the one it runs, and other owners', stay."""
        for key in ("k1", "k2", "k3"):
            await store.accept(notification(key))
        running, lost = await store.claim(JobKind.IMPORT, owner="w", lease_s=300, limit=2)
        (others,) = await store.claim(JobKind.IMPORT, owner="v", lease_s=300)

        released = await store.release_lost_claims(JobKind.IMPORT, owner="w", running=[running.id])
        assert released == 1
        assert await store.release_lost_claims(JobKind.DELIVER, owner="v", running=[]) == 0
        again = await claim_one(store)
        assert (again.id, again.attempts) == (lost.id, 1)
        assert await store.extend_lease(running, lease_s=300)
        assert await store.extend_lease(others, lease_s=300)

    async def test_bury_makes_a_job_unclaimable(self, store: Store, clock: FakeClock) -> None:
        """A buried job is dead: never claimed again, even much later."""
        await store.accept(notification())
        job = await claim_one(store)
        assert await store.bury(job, error="gave up")
        clock.advance(10**6)
        assert await store.claim(JobKind.IMPORT, owner="w", lease_s=30) == []
        assert (await store.stats()).jobs["import"]["dead"] == 1

    async def test_extend_lease_keeps_the_job(self, store: Store, clock: FakeClock) -> None:
        """An extended lease is not reclaimed when the original lease would have expired."""
        await store.accept(notification())
        job = await claim_one(store, lease_s=10)
        clock.advance(8)
        assert await store.extend_lease(job, lease_s=10)
        clock.advance(8)
        assert await store.claim(JobKind.IMPORT, owner="other", lease_s=10) == []
        assert await store.complete(job)


class TestImportAttempts:
    async def test_attempts_are_numbered_and_ended(self, store: Store, clock: FakeClock) -> None:
        """Each attempt gets the next number; its end records status, result and latency."""
        accepted = await store.accept(notification())
        job = await claim_one(store)
        assert await store.begin_import_attempt(job) == 1
        clock.advance(1)
        assert await store.end_import_attempt(
            job, 1, http_status=503, result="retry", latency_ms=40, error="HTTP 503"
        )
        assert await store.begin_import_attempt(job, kind=AttemptKind.RECONCILE) == 2
        first, second = await store.list_import_attempts(accepted.id)
        assert (first.started_at, first.ended_at, first.http_status) == (START, START + 1, 503)
        assert (first.result, first.latency_ms, first.error) == ("retry", 40, "HTTP 503")
        assert second.kind is AttemptKind.RECONCILE
        assert second.ended_at is None


class TestOutcome:
    async def test_outcome_events_deliveries_and_jobs_are_written_together(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Imported: session recorded, token erased, events and deliver jobs, import job done."""
        accepted = await store.accept(notification())
        job = await claim_one(store)
        clock.advance(5)
        session = DiditSession(session_id="sess-9", session_number=43762, status="In Review")
        first, second = event(clock, "crm", "audit"), event(clock, "crm")
        outcome = FinalOutcome(status=NotificationStatus.IMPORTED, session=session)
        assert await store.record_outcome(job, outcome, [first, second])
        stored = await store.load_notification(accepted.id)
        assert stored is not None
        assert stored.status is NotificationStatus.IMPORTED
        assert stored.session == session
        assert stored.token is None
        assert stored.token_sha256 == notification().token_sha256
        assert stored.finished_at == START + 5
        timeline = await store.timeline(accepted.id)
        assert timeline is not None
        assert [e.body for e in timeline.events] == [first.body, second.body]
        assert sorted((d.event.id, d.destination) for d in timeline.deliveries) == sorted(
            [(first.id, "crm"), (first.id, "audit"), (second.id, "crm")]
        )
        deliver = await store.claim(JobKind.DELIVER, owner="d", lease_s=30, limit=10)
        assert sorted(job.ref for job in deliver) == sorted(d.id for d in timeline.deliveries)
        assert {job.lane for job in deliver} == {"crm", "audit"}
        stats = await store.stats()
        assert stats.jobs["import"]["done"] == 1
        assert stats.deliveries["pending"] == 3

    async def test_a_failing_part_rolls_back_the_whole_outcome(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Two events with one id: nothing of the outcome is written and the lease still holds."""
        accepted = await store.accept(notification())
        job = await claim_one(store)
        duplicate = event(clock, "crm")
        outcome = FinalOutcome(status=NotificationStatus.IMPORTED)
        with pytest.raises(ValueError, match="conflict"):
            await store.record_outcome(job, outcome, [duplicate, duplicate])
        stored = await store.load_notification(accepted.id)
        assert stored is not None
        assert stored.status is NotificationStatus.PENDING
        assert stored.token is not None
        assert (await store.stats()).deliveries["pending"] == 0
        assert await store.complete(job)  # still running, still ours

    async def test_outcome_must_be_final(self, store: Store) -> None:
        """``pending`` is not an outcome."""
        await store.accept(notification())
        job = await claim_one(store)
        with pytest.raises(ValueError, match="final"):
            await store.record_outcome(job, FinalOutcome(status=NotificationStatus.PENDING), [])

    @pytest.mark.parametrize("status", [NotificationStatus.REJECTED, NotificationStatus.EXPIRED])
    async def test_token_is_erased_at_a_final_state(
        self, store: Store, clock: FakeClock, status: NotificationStatus
    ) -> None:
        """Rejected and expired notifications keep only the token's hash."""
        nid = await finish(store, clock, status)
        stored = await store.load_notification(nid)
        assert stored is not None
        assert stored.token is None
        assert stored.token_sha256
        assert stored.reason == Reason(code="some_reason", message="why", http_status=403)

    async def test_failed_keeps_its_token_until_the_deadline(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A failed token lives for an operator retry; the sweep erases it at the deadline."""
        nid = await finish(store, clock, NotificationStatus.FAILED)
        assert await store.erase_stale_tokens() == 0
        stored = await store.load_notification(nid)
        assert stored is not None
        assert stored.token is not None
        clock.advance(3_600)
        assert await store.erase_stale_tokens() == 1
        stored = await store.load_notification(nid)
        assert stored is not None
        assert stored.token is None
        assert await store.retry_notification(nid) is RetryResult.TOKEN_GONE


class TestStatusUpdates:
    async def test_status_update_of_an_imported_session_adds_its_event(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Found by its Didit session, an imported notification takes the new status and event."""
        await store.accept(notification())
        job = await claim_one(store)
        session = DiditSession(session_id="sess-1", session_number=7, status="In Review")
        outcome = FinalOutcome(status=NotificationStatus.IMPORTED, session=session)
        assert await store.record_outcome(job, outcome, [])
        found = await store.find_by_session("sess-1")
        assert found is not None
        assert found.id == job.ref
        assert await store.find_by_session("sess-unknown") is None
        update = event(clock, "crm", type_=EventType.STATUS_UPDATED)
        recorded = await store.record_status_update(
            found.id, didit_status="Approved", signed_at=START, event=update
        )
        assert recorded is StatusChange.RECORDED
        timeline = await store.timeline(found.id)
        assert timeline is not None
        assert timeline.notification.session is not None
        assert timeline.notification.session.status == "Approved"
        assert [e.type for e in timeline.events] == [EventType.STATUS_UPDATED]
        assert [d.destination for d in timeline.deliveries] == ["crm"]

    async def test_status_update_of_a_notification_not_imported_writes_nothing(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A pending notification takes no status update and no event."""
        accepted = await store.accept(notification())
        update = event(clock, "crm", type_=EventType.STATUS_UPDATED)
        change = await store.record_status_update(
            accepted.id, didit_status="Approved", signed_at=START, event=update
        )
        assert change is StatusChange.STALE
        timeline = await store.timeline(accepted.id)
        assert timeline is not None
        assert timeline.events == ()


async def imported(store: Store, key: str, *, status: str | None = "Not Started") -> str:
    """An imported notification of Didit session ``session-of-{key}``, with ``status``."""
    await store.accept(notification(key))
    job = await claim_one(store)
    session = DiditSession(session_id=f"session-of-{key}", status=status)
    assert await store.record_outcome(
        job, FinalOutcome(status=NotificationStatus.IMPORTED, session=session), []
    )
    return job.ref


async def status_update(
    store: Store, clock: FakeClock, notification_id: str, status: str, *, signed_at: float
) -> StatusChange:
    update = event(clock, "crm", type_=EventType.STATUS_UPDATED)
    return await store.record_status_update(
        notification_id, didit_status=status, signed_at=signed_at, event=update
    )


async def status_and_events(store: Store, notification_id: str) -> tuple[str | None, int]:
    timeline = await store.timeline(notification_id)
    assert timeline is not None
    session = timeline.notification.session
    assert session is not None
    return session.status, len(timeline.events)


class TestStatusOrdering:
    async def test_a_replayed_older_decision_never_flips_a_newer_one(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Approved (signed 60 s ago), Declined (30 s ago), then Approved replayed."""
        nid = await imported(store, "k")
        now = clock()
        assert await status_update(store, clock, nid, "Approved", signed_at=now - 60) is (
            StatusChange.RECORDED
        )
        assert await status_update(store, clock, nid, "Declined", signed_at=now - 30) is (
            StatusChange.RECORDED
        )
        for _ in range(3):
            replay = await status_update(store, clock, nid, "Approved", signed_at=now - 60)
            assert replay is StatusChange.STALE
        assert await status_and_events(store, nid) == ("Declined", 2)

    async def test_the_same_status_signed_later_is_unchanged_and_moves_the_time_on(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Didit said Approved at t+30: a Declined signed at t+20 came from before that."""
        nid = await imported(store, "k")
        t = clock()
        assert await status_update(store, clock, nid, "Approved", signed_at=t + 10) is (
            StatusChange.RECORDED
        )
        assert await status_update(store, clock, nid, "APPROVED", signed_at=t + 30) is (
            StatusChange.UNCHANGED
        )
        assert await status_update(store, clock, nid, "Declined", signed_at=t + 20) is (
            StatusChange.STALE
        )
        assert await status_and_events(store, nid) == ("Approved", 1)

    @pytest.mark.parametrize(
        ("current", "new", "change"),
        [
            ("Approved", "In Review", StatusChange.STALE),
            ("APPROVED", "in review", StatusChange.STALE),
            ("Declined", "Not Started", StatusChange.STALE),
            ("Declined", "Approved", StatusChange.RECORDED),
            ("Approved", "Kyc Expired", StatusChange.RECORDED),
            ("In Review", "Approved", StatusChange.RECORDED),
            ("In Review", "Not Started", StatusChange.RECORDED),
            (None, "In Review", StatusChange.RECORDED),
            ("In Review", "IN_REVIEW", StatusChange.UNCHANGED),
        ],
    )
    async def test_a_decided_status_is_never_replaced_by_an_undecided_one(
        self, store: Store, clock: FakeClock, current: str | None, new: str, change: StatusChange
    ) -> None:
        """Even signed later: "In Review" after "Approved" is a stale webhook."""
        nid = await imported(store, "k", status=current)
        assert await status_update(store, clock, nid, new, signed_at=clock() + 60) is change

    async def test_racing_updates_end_on_the_decision_whatever_the_order(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A decision and an undecided status sent at the same moment, in either order (and
        the undecided one even signed later): the decision always wins, with one event each."""
        ids = [await imported(store, f"k{n}") for n in range(8)]
        t = clock()
        races = []
        for n, nid in enumerate(ids):
            pair = [
                status_update(store, clock, nid, "Approved", signed_at=t),
                status_update(store, clock, nid, "In Progress", signed_at=t + n % 2),
            ]
            races.append(asyncio.gather(*(pair if n % 4 < 2 else pair[::-1])))
        await asyncio.gather(*races)
        for nid in ids:
            status, events = await status_and_events(store, nid)
            assert status == "Approved"
            timeline = await store.timeline(nid)
            assert timeline is not None
            bodies = [e.type for e in timeline.events]
            assert bodies.count(EventType.STATUS_UPDATED) == events


class TestRetryNotification:
    async def test_failed_notification_is_requeued_while_its_token_lives(
        self, store: Store, clock: FakeClock
    ) -> None:
        """retry: back to pending, its job claimable at once with a fresh attempt count."""
        nid = await finish(store, clock, NotificationStatus.FAILED)
        assert await store.retry_notification(nid) is RetryResult.REQUEUED
        stored = await store.load_notification(nid)
        assert stored is not None
        assert stored.status is NotificationStatus.PENDING
        assert stored.reason is None
        job = await claim_one(store)
        assert job.ref == nid
        assert job.attempts == 1
        assert (await store.accept(notification("k"))).duplicate  # live again

    async def test_retry_refuses_what_it_cannot_help(self, store: Store, clock: FakeClock) -> None:
        """Unknown, imported, and past-deadline notifications are not retried."""
        assert await store.retry_notification("ntf_nope") is RetryResult.NOT_FOUND
        imported = await finish(store, clock, NotificationStatus.IMPORTED, key="a")
        assert await store.retry_notification(imported) is RetryResult.NOT_RETRYABLE
        failed = await finish(store, clock, NotificationStatus.FAILED, key="b")
        clock.advance(3_600)
        assert await store.retry_notification(failed) is RetryResult.TOKEN_GONE

    async def test_retry_is_superseded_by_a_newer_notification(
        self, store: Store, clock: FakeClock
    ) -> None:
        """If the partner already sent the share again, the old failed one stays failed."""
        old = await finish(store, clock, NotificationStatus.FAILED)
        assert not (await store.accept(notification("k"))).duplicate
        assert await store.retry_notification(old) is RetryResult.SUPERSEDED

    async def test_retry_is_not_superseded_by_another_partners_notification(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Another partner's token with the same claims is not this share sent again."""
        old = await finish(store, clock, NotificationStatus.FAILED)
        assert not (await store.accept(notification("k", partner="another"))).duplicate
        assert await store.retry_notification(old) is RetryResult.REQUEUED

    async def test_a_retry_with_a_new_route_records_the_change(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The notification takes the new route (vendor_data kept); the timeline shows old and
        new; a retry with the same route records nothing."""
        failed = await finish(store, clock, NotificationStatus.FAILED)
        before = await store.load_notification(failed)
        assert before is not None
        new = replace(
            before.route, rule="fixed", workflow_id="wf-fixed", trust_review=True,
            destinations=("crm",),
        )  # fmt: skip
        assert await store.retry_notification(failed, route=new) is RetryResult.REQUEUED
        after = await store.load_notification(failed)
        assert after is not None
        assert after.route == new
        timeline = await store.timeline(failed)
        assert timeline is not None
        assert [(c.old, c.new) for c in timeline.route_changes] == [(before.route, new)]
        job = await claim_one(store)
        assert await store.record_outcome(job, FinalOutcome(status=NotificationStatus.FAILED), [])
        assert await store.retry_notification(failed, route=new) is RetryResult.REQUEUED
        timeline = await store.timeline(failed)
        assert timeline is not None
        assert len(timeline.route_changes) == 1

    async def test_pending_notification_with_a_dead_job_is_revived(self, store: Store) -> None:
        """A buried import job can be revived; a pending one with a live job cannot."""
        accepted = await store.accept(notification())
        assert await store.retry_notification(accepted.id) is RetryResult.NOT_RETRYABLE
        job = await claim_one(store)
        assert await store.bury(job, error="crashed too often")
        assert await store.retry_notification(accepted.id) is RetryResult.REQUEUED
        assert (await claim_one(store)).ref == accepted.id


class TestDeliveries:
    async def delivery_job(self, store: Store, clock: FakeClock, *destinations: str) -> Job:
        await store.accept(notification())
        job = await claim_one(store)
        new_event = event(clock, *destinations)
        assert await store.record_outcome(
            job, FinalOutcome(status=NotificationStatus.IMPORTED), [new_event]
        )
        return await claim_one(store, kind=JobKind.DELIVER, owner="d")

    async def test_the_trace_context_travels_with_the_notification_to_its_deliveries(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Work done later (or by another process) joins the intake's trace."""
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        accepted = await store.accept(replace(notification(), trace_context=traceparent))
        loaded = await store.load_notification(accepted.id)
        assert loaded is not None
        assert loaded.trace_context == traceparent
        job = await claim_one(store)
        assert await store.record_outcome(
            job, FinalOutcome(status=NotificationStatus.IMPORTED), [event(clock, "crm")]
        )
        [delivery] = await store.list_deliveries()
        assert delivery.trace_context == traceparent
        assert (delivery.partner, delivery.rule) == ("acme", loaded.route.rule)
        loaded_delivery = await store.load_delivery(delivery.id)
        assert loaded_delivery is not None
        assert loaded_delivery.trace_context == traceparent

    async def test_load_delivery_carries_the_event_bytes(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A delivery loads with its fixed event body and type."""
        job = await self.delivery_job(store, clock, "crm")
        delivery = await store.load_delivery(job.ref)
        assert delivery is not None
        assert delivery.destination == "crm"
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.attempts == 0
        assert delivery.event.type is EventType.IMPORTED
        assert delivery.event.body.startswith(b'{"id": "evt_')
        assert await store.load_delivery("dlv_nope") is None

    async def test_delivered_records_the_attempt_and_completes(
        self, store: Store, clock: FakeClock
    ) -> None:
        """mark_delivered: attempt kept (excerpt capped at 2 KB), delivered, job done."""
        job = await self.delivery_job(store, clock, "crm")
        clock.advance(2)
        report = AttemptReport(http_status=200, latency_ms=12, response_excerpt=b"x" * 5000)
        assert await store.mark_delivered(job, report)
        delivery = await store.load_delivery(job.ref)
        assert delivery is not None
        assert delivery.status is DeliveryStatus.DELIVERED
        assert delivery.delivered_at == START + 2
        assert delivery.attempts == 1
        timeline = await store.timeline(delivery.event.notification_id)
        assert timeline is not None
        (attempt,) = timeline.delivery_attempts
        assert (attempt.http_status, attempt.latency_ms) == (200, 12)
        assert attempt.response_excerpt == b"x" * 2048
        assert (await store.stats()).jobs["deliver"]["done"] == 1

    async def test_failed_delivery_retries_then_dies_then_is_redelivered(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A failure retries at retry_at; None buries it dead; redeliver starts it over."""
        job = await self.delivery_job(store, clock, "crm")
        report = AttemptReport(http_status=500, latency_ms=3, response_excerpt=b"oops")
        assert await store.delivery_failed(job, report, retry_at=START + 5)
        assert await store.claim(JobKind.DELIVER, owner="d", lease_s=30) == []
        clock.advance(5)
        job = await claim_one(store, kind=JobKind.DELIVER, owner="d")
        assert job.attempts == 2
        timeout = AttemptReport(http_status=None, latency_ms=15000, error="timeout")
        assert await store.delivery_failed(job, timeout, retry_at=None)
        delivery = await store.load_delivery(job.ref)
        assert delivery is not None
        assert delivery.status is DeliveryStatus.DEAD
        assert delivery.attempts == 2
        assert delivery.last_error == "timeout"
        assert not await store.redeliver("dlv_nope")
        assert await store.redeliver(job.ref)
        assert not await store.redeliver(job.ref)  # already pending
        again = await claim_one(store, kind=JobKind.DELIVER, owner="d")
        assert again.ref == job.ref
        assert again.attempts == 1

    async def test_delivery_writes_after_lease_loss_are_refused(
        self, store: Store, clock: FakeClock
    ) -> None:
        """mark_delivered / delivery_failed by a stale owner record nothing."""
        job = await self.delivery_job(store, clock, "crm")
        clock.advance(31)
        thief = await claim_one(store, kind=JobKind.DELIVER, owner="other")
        report = AttemptReport(http_status=200, latency_ms=1)
        assert not await store.mark_delivered(job, report)
        assert not await store.delivery_failed(job, report, retry_at=None)
        delivery = await store.load_delivery(job.ref)
        assert delivery is not None
        assert delivery.status is DeliveryStatus.PENDING
        assert delivery.attempts == 0
        assert await store.mark_delivered(thief, report)

    async def test_delivery_verbs_need_a_deliver_job(self, store: Store) -> None:
        """Passing an import job to a delivery verb is a programming error."""
        await store.accept(notification())
        job = await claim_one(store)
        report = AttemptReport(http_status=200, latency_ms=1)
        with pytest.raises(ValueError, match="deliver job"):
            await store.mark_delivered(job, report)
        with pytest.raises(ValueError, match="deliver job"):
            await store.delivery_failed(job, report, retry_at=None)

    async def test_burying_a_deliver_job_kills_its_delivery(
        self, store: Store, clock: FakeClock
    ) -> None:
        """A generic bury keeps the delivery visible as dead, ready for redelivery."""
        job = await self.delivery_job(store, clock, "crm")
        assert await store.bury(job, error="handler crashed too often")
        delivery = await store.load_delivery(job.ref)
        assert delivery is not None
        assert delivery.status is DeliveryStatus.DEAD

    async def test_queue_gauges_agree_with_the_full_counts(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The cheap gauges /metrics serves equal what counting every row gives: pending
        notifications and the oldest one's arrival, dead deliveries over every destination,
        disabled destinations (with deliveries or without)."""
        assert await store.queue_gauges() == QueueGauges(
            pending_notifications=0,
            oldest_pending_received_at=None,
            dead_deliveries=0,
            disabled_destinations=0,
        )
        for key in ("x1", "x2", "x3"):
            await store.accept(notification(key))
            job = await claim_one(store)
            imported = FinalOutcome(status=NotificationStatus.IMPORTED)
            assert await store.record_outcome(job, imported, [event(clock, "a", "b", "c")])
        for job in await store.claim(JobKind.DELIVER, owner="d", lease_s=30, limit=20):
            if job.lane != "c":
                assert await store.bury(job, error="gone")
        await store.set_destination_enabled("b", enabled=False, reason="410 Gone")
        await store.set_destination_enabled("z", enabled=False, reason="unused")
        await store.accept(notification("p1"))
        first_at = clock.now
        clock.advance(30)
        await store.accept(notification("p2"))
        stats = await store.stats()
        states = await store.destination_states()
        assert await store.queue_gauges() == QueueGauges(
            pending_notifications=stats.notifications["pending"],
            oldest_pending_received_at=first_at,
            dead_deliveries=stats.deliveries["dead"],
            disabled_destinations=sum(not state.enabled for state in states),
        )
        assert (stats.notifications["pending"], stats.deliveries["dead"]) == (2, 6)

    async def test_a_disabled_destination_waits_and_resumes(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Deliveries to a disabled destination are not claimed until it is enabled again."""
        await store.set_destination_enabled("crm", enabled=False, reason="410 Gone")
        await store.accept(notification())
        job = await claim_one(store)
        outcome = FinalOutcome(status=NotificationStatus.IMPORTED)
        assert await store.record_outcome(job, outcome, [event(clock, "crm", "audit")])
        jobs = await store.claim(JobKind.DELIVER, owner="d", lease_s=30, limit=10)
        assert [job.lane for job in jobs] == ["audit"]
        states = {state.name: state for state in await store.destination_states()}
        assert not states["crm"].enabled
        assert states["crm"].reason == "410 Gone"
        assert states["crm"].pending == 1
        assert states["audit"].enabled
        await store.set_destination_enabled("crm", enabled=True)
        resumed = await claim_one(store, kind=JobKind.DELIVER, owner="d")
        assert resumed.lane == "crm"

    async def test_claim_skips_lanes_capped_at_zero(self, store: Store, clock: FakeClock) -> None:
        """A lane capped at 0 leaves its destination's deliveries for later."""
        await store.accept(notification())
        job = await claim_one(store)
        outcome = FinalOutcome(status=NotificationStatus.IMPORTED)
        assert await store.record_outcome(job, outcome, [event(clock, "crm", "audit")])
        jobs = await store.claim(
            JobKind.DELIVER, owner="d", lease_s=30, limit=10, lane_caps={"audit": 0, "crm": 4}
        )
        assert [job.lane for job in jobs] == ["crm"]

    async def test_redeliver_since_picks_a_destinations_recent_deliveries(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Only the named destination's finished deliveries since the time, by status."""
        job = await self.delivery_job(store, clock, "crm", "audit")
        other = await claim_one(store, kind=JobKind.DELIVER, owner="d")
        crm, audit = (job, other) if job.lane == "crm" else (other, job)
        clock.advance(10)
        assert await store.mark_delivered(crm, AttemptReport(http_status=204, latency_ms=1))
        assert await store.mark_delivered(audit, AttemptReport(http_status=204, latency_ms=1))
        assert await store.redeliver_since("crm", since=START + 20) == 0
        dead = DeliveryStatus.DEAD
        assert await store.redeliver_since("crm", since=START, status=dead) == 0
        assert await store.redeliver_since("crm", since=START) == 1
        again = await claim_one(store, kind=JobKind.DELIVER, owner="d")
        assert again.ref == crm.ref
        states = {state.name: state for state in await store.destination_states()}
        assert states["crm"].pending == 1
        assert states["audit"].pending == 0


class TestOperations:
    async def test_list_filters_pages_and_never_loads_tokens(
        self, store: Store, clock: FakeClock
    ) -> None:
        """Newest first, by status and partner, paged by id; tokens are not read."""
        ids = []
        for i in range(5):
            clock.advance(1)
            ids.append((await store.accept(notification(f"k{i}", partner="acme"))).id)
        other = await store.accept(notification("g", partner="globex"))
        listed = await store.list_notifications(partner="acme", limit=3)
        assert [n.id for n in listed] == ids[::-1][:3]
        assert all(n.token is None for n in listed)
        rest = await store.list_notifications(partner="acme", limit=3, before=listed[-1].id)
        assert [n.id for n in rest] == ids[::-1][3:]
        pending = await store.list_notifications(status=NotificationStatus.PENDING, limit=100)
        assert len(pending) == 6
        assert pending[0].id == other.id
        assert await store.list_notifications(status=NotificationStatus.IMPORTED) == []

    async def test_timeline_shows_attempts_and_outcome(
        self, store: Store, clock: FakeClock
    ) -> None:
        """The timeline holds the notification (no token), its attempts and its events."""
        accepted = await store.accept(notification())
        job = await claim_one(store)
        attempt = await store.begin_import_attempt(job)
        assert attempt == 1
        await store.end_import_attempt(job, 1, http_status=201, result="imported", latency_ms=80)
        outcome = FinalOutcome(status=NotificationStatus.IMPORTED)
        assert await store.record_outcome(job, outcome, [event(clock, "crm")])
        timeline = await store.timeline(accepted.id)
        assert timeline is not None
        assert timeline.notification.status is NotificationStatus.IMPORTED
        assert timeline.notification.token is None
        assert [a.http_status for a in timeline.attempts] == [201]
        assert len(timeline.events) == 1
        assert len(timeline.deliveries) == 1
        assert await store.timeline("ntf_nope") is None

    async def test_stats_count_and_age(self, store: Store, clock: FakeClock) -> None:
        """Stats count notifications and jobs and age the oldest pending one."""
        empty = await store.stats()
        assert empty.oldest_pending_age_s is None
        assert empty.notifications["pending"] == 0
        await store.accept(notification("a"))
        clock.advance(30)
        await store.accept(notification("b"))
        stats = await store.stats()
        assert stats.notifications["pending"] == 2
        assert stats.oldest_pending_age_s == 30
        assert stats.jobs["import"]["queued"] == 2
        assert stats.jobs["deliver"]["queued"] == 0

    async def test_ping_and_close(self, open_: Callable[[], Store]) -> None:
        """ping passes while open; after close every call is StoreUnavailable."""
        store = open_()
        await store.ping()
        await store.close()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.accept(notification())
        with pytest.raises(StoreUnavailable):
            await store.load_notification("ntf_x")

    async def test_a_reopened_store_sees_everything_committed(
        self, open_: Callable[[], Store], clock: FakeClock
    ) -> None:
        """Data outlives the store object; migrations are not re-applied on reopen."""
        first = open_()
        accepted = await first.accept(notification())
        await first.close()
        second = open_()
        stored = await second.load_notification(accepted.id)
        assert stored is not None
        assert stored.token is not None
        assert (await second.accept(notification())).id == accepted.id
