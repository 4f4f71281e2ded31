"""Every branch of the import handler: outcomes, reconciliation, deadlines, leases, erasure."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from bridge.errors import StoreUnavailable
from bridge.observability import Metrics
from bridge.pacing import Pacer
from bridge.pipeline import imports
from bridge.pipeline.ambiguity import AttemptResult, is_ambiguous
from bridge.store import AttemptKind, Job, RetryResult, Store, open_store
from bridge.types import Complete, Done, NotificationStatus, Release, Retry
from tests.pipeline.conftest import (
    WORKFLOW,
    FakeDidit,
    Rig,
    imported_body,
    session_row,
    skip_ahead,
)
from tests.store.helpers import START, FakeClock

pytestmark = pytest.mark.anyio


async def status(rig: Rig, notification_id: str) -> tuple[str, str | None]:
    n = await rig.store.load_notification(notification_id)
    assert n is not None
    return n.status.value, n.reason.code if n.reason else None


async def attempts(rig: Rig, notification_id: str) -> list[tuple[str, str | None]]:
    return [(a.kind.value, a.result) for a in await rig.store.list_import_attempts(notification_id)]


async def events(rig: Rig, notification_id: str) -> list[dict[str, Any]]:
    timeline = await rig.store.timeline(notification_id)
    assert timeline is not None
    return [orjson.loads(e.body) for e in timeline.events]


class TestOutcomes:
    async def test_201_is_imported_with_its_session_and_event(self, rig: Rig) -> None:
        rig.fake.imports.append(httpx.Response(201, json=imported_body()))
        notification_id = await rig.accept()
        result = await rig.handler(await rig.claim())
        assert result == Done()
        n = await rig.store.load_notification(notification_id)
        assert n is not None
        assert n.status is NotificationStatus.IMPORTED
        assert n.session is not None
        assert (n.session.session_id, n.session.session_number) == ("new-1", 43100)
        assert n.token is None
        [event] = await events(rig, notification_id)
        assert event["type"] == "share.imported"
        sent = orjson.loads(rig.fake.calls[0].content)
        assert sent == {
            "share_token": "h.c.s",
            "workflow_id": WORKFLOW,
            "vendor_data": "acme:c-1",
            "trust_review": False,
        }
        assert await attempts(rig, notification_id) == [("import", "imported")]

    @pytest.mark.parametrize(
        ("answer", "final", "code"),
        [
            ((400, ["A user token only into a KYC workflow."]), "rejected", "bad_request"),
            (
                (401, {"detail": "Share token invalid or expired."}),
                "rejected",
                "token_invalid_or_expired",
            ),
            ((401, {"detail": "Invalid API key."}), "failed", "upstream_auth"),
            ((402, {"message": "Insufficient balance"}), "failed", "insufficient_balance"),
            (
                (404, {"detail": "Original session no longer exists."}),
                "rejected",
                "source_session_not_found",
            ),
            (
                (404, {"detail": "workflow_id not found in your application."}),
                "failed",
                "workflow_not_found",
            ),
        ],
    )
    async def test_final_answers(
        self, rig: Rig, answer: tuple[int, Any], final: str, code: str
    ) -> None:
        rig.fake.imports.append(httpx.Response(answer[0], json=answer[1]))
        notification_id = await rig.accept()
        assert await rig.handler(await rig.claim()) == Done()
        assert await status(rig, notification_id) == (final, code)
        [event] = await events(rig, notification_id)
        assert event["type"] == f"share.{final}"
        assert event["data"]["reason"]["http_status"] == answer[0]
        assert rig.fake.list_calls == 0

    async def test_destinations_take_only_their_event_types(self, rig: Rig) -> None:
        rig.fake.imports.append(httpx.Response(401, json={"detail": "Invalid API key."}))
        failed_id = await rig.accept(key="a")
        await rig.handler(await rig.claim())
        rig.fake.imports.append(httpx.Response(201, json=imported_body()))
        imported_id = await rig.accept(key="b")
        await rig.handler(await rig.claim())
        by_id = {}
        for notification_id in (failed_id, imported_id):
            timeline = await rig.store.timeline(notification_id)
            assert timeline is not None
            by_id[notification_id] = sorted(d.destination for d in timeline.deliveries)
        # audit takes share.failed only; "gone" is no longer configured: it keeps its delivery
        assert by_id[failed_id] == ["audit", "crm", "gone"]
        assert by_id[imported_id] == ["crm", "gone"]


class TestRetries:
    async def test_429_goes_back_to_the_queue_after_retry_after_and_pauses_the_pacer(
        self, rig: Rig
    ) -> None:
        rig.fake.imports.append(
            httpx.Response(429, json={"detail": "throttled"}, headers={"Retry-After": "7"})
        )
        notification_id = await rig.accept()
        result = await rig.handler(await rig.claim())
        assert isinstance(result, Retry)
        assert result.delay_s == 7
        assert result.not_after == START + 3_600
        assert rig.pacer.paused_until is not None
        assert await attempts(rig, notification_id) == [("import", "rate_limited")]
        assert await status(rig, notification_id) == ("pending", None)

    async def test_a_5xx_is_retried_and_marked_ambiguous(self, rig: Rig) -> None:
        rig.fake.imports.append(httpx.Response(502, text="<html>bad gateway</html>"))
        notification_id = await rig.accept()
        result = await rig.handler(await rig.claim())
        assert isinstance(result, Retry)
        assert await attempts(rig, notification_id) == [("import", AttemptResult.AMBIGUOUS)]

    async def test_a_timeout_is_ambiguous_and_never_a_failure(self, rig: Rig) -> None:
        rig.fake.imports.append(httpx.ReadTimeout("slow"))
        notification_id = await rig.accept()
        result = await rig.handler(await rig.claim())
        assert isinstance(result, Retry)
        assert result.delay_s is None
        assert await attempts(rig, notification_id) == [("import", AttemptResult.AMBIGUOUS)]
        assert await status(rig, notification_id) == ("pending", None)


async def ambiguous_first(rig: Rig) -> tuple[str, Job]:
    """A notification whose first import timed out; the job re-claimed for the next run."""
    rig.fake.imports.append(httpx.ReadTimeout("lost"))
    notification_id = await rig.accept()
    job = await rig.claim()
    result = await rig.handler(job)
    assert isinstance(result, Retry)
    assert await rig.store.retry(job, run_after=rig.clock.now, error="lost")
    return notification_id, await rig.claim()


class TestReconciliation:
    async def test_found_after_an_ambiguous_attempt_is_imported_without_a_second_import(
        self, rig: Rig
    ) -> None:
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("made-1", at=START)]})
        )
        assert await rig.handler(job) == Done()
        assert rig.fake.import_calls == 1
        n = await rig.store.load_notification(notification_id)
        assert n is not None
        assert n.status is NotificationStatus.IMPORTED
        assert n.session is not None
        assert n.session.session_id == "made-1"
        assert await attempts(rig, notification_id) == [
            ("import", AttemptResult.AMBIGUOUS),
            ("reconcile", "imported"),
        ]
        query = dict(rig.fake.calls[-1].url.params)
        assert (query["vendor_data"], query["workflow_id"]) == ("acme:c-1", WORKFLOW)
        assert query["session_kind"] == "user"

    async def test_not_found_imports_again(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        rig.fake.imports.append(httpx.Response(201, json=imported_body("second")))
        assert await rig.handler(job) == Done()
        assert rig.fake.import_calls == 2
        assert await attempts(rig, notification_id) == [
            ("import", AttemptResult.AMBIGUOUS),
            ("reconcile", "not_imported"),
            ("import", "imported"),
        ]

    async def test_several_candidates_retry_without_importing(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        rows = [session_row("a", at=START), session_row("b", at=START)]
        rig.fake.lists.append(httpx.Response(200, json={"results": rows}))
        result = await rig.handler(job)
        notification = await rig.store.load_notification(notification_id)
        assert notification is not None
        assert notification.deadline is not None
        assert result == Retry(
            "reconcile: several candidate sessions",
            delay_s=None,  # the worker's growing backoff, not a fixed poll of Didit's list
            not_after=notification.deadline + imports.RECONCILE_GIVE_UP_S,
        )
        assert rig.fake.import_calls == 1
        assert (await attempts(rig, notification_id))[-1] == ("reconcile", "ambiguous_match")
        assert await status(rig, notification_id) == ("pending", None)

    async def test_the_source_session_breaks_a_tie(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        rows = [session_row("a", at=START), session_row("b", at=START, source="src-1")]
        rig.fake.lists.append(httpx.Response(200, json={"results": rows}))
        assert await rig.handler(job) == Done()
        n = await rig.store.load_notification(notification_id)
        assert n is not None
        assert n.session is not None
        assert n.session.session_id == "b"

    async def test_a_failing_list_call_retries_and_records_the_error(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(
            httpx.Response(503, json={"message": "down"}, headers={"Retry-After": "4"})
        )
        result = await rig.handler(job)
        assert isinstance(result, Retry)
        assert result.error.startswith("reconcile: ")
        assert result.delay_s == 4
        [_, reconcile] = await rig.store.list_import_attempts(notification_id)
        assert reconcile.kind is AttemptKind.RECONCILE
        assert reconcile.http_status == 503
        assert reconcile.error
        assert rig.fake.import_calls == 1
        assert await status(rig, notification_id) == ("pending", None)

    async def test_ambiguity_settled_as_not_imported_past_the_deadline_expires(
        self, rig: Rig
    ) -> None:
        rig.fake.imports.append(httpx.ReadTimeout("lost"))
        notification_id = await rig.accept(deadline=START + 60)
        job = await rig.claim()
        await rig.handler(job)
        rig.clock.advance(120)
        await rig.store.retry(job, run_after=rig.clock.now, error="lost")
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        assert await rig.handler(await rig.claim()) == Done()
        assert await status(rig, notification_id) == ("expired", "share_token_expired")
        assert rig.fake.import_calls == 1

    async def test_a_403_is_reconciled_before_it_is_judged(self, rig: Rig) -> None:
        rig.fake.imports.append(
            httpx.Response(403, json={"detail": "This session has already been imported."})
        )
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        notification_id = await rig.accept()
        assert await rig.handler(await rig.claim()) == Done()
        assert await status(rig, notification_id) == ("rejected", "already_imported")
        assert await attempts(rig, notification_id) == [
            ("import", "already_imported"),
            ("reconcile", "not_imported"),
        ]

    async def test_a_403_after_our_own_lost_import_is_imported(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))  # not visible yet
        rig.fake.imports.append(
            httpx.Response(403, json={"detail": "This session has already been imported."})
        )
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("ours", at=START)]})
        )
        assert await rig.handler(job) == Done()
        assert await status(rig, notification_id) == ("imported", None)

    @pytest.mark.parametrize(
        ("lists", "expected"),
        [
            ([httpx.Response(500, json={"detail": "x"})], Retry),
            (
                [
                    httpx.Response(
                        200,
                        json={"results": [session_row("a", at=START), session_row("b", at=START)]},
                    )
                ],
                Retry,
            ),
        ],
        ids=["list-fails", "ambiguous-match"],
    )
    async def test_a_403_that_cannot_be_reconciled_is_retried_not_judged(
        self, rig: Rig, lists: list[httpx.Response], expected: type
    ) -> None:
        rig.fake.imports.append(httpx.Response(403, json={"detail": "Insufficient credits."}))
        rig.fake.lists.extend(lists)
        notification_id = await rig.accept()
        assert isinstance(await rig.handler(await rig.claim()), expected)
        assert await status(rig, notification_id) == ("pending", None)

    async def test_a_credits_403_with_nothing_found_fails_upstream_forbidden(
        self, rig: Rig
    ) -> None:
        rig.fake.imports.append(
            httpx.Response(403, json={"detail": "Insufficient credits to import this session."})
        )
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        notification_id = await rig.accept()
        await rig.handler(await rig.claim())
        assert await status(rig, notification_id) == ("failed", "upstream_forbidden")


ALREADY = {"detail": "This session has already been imported."}


async def next_run(rig: Rig, job: Job, result: object) -> Job:
    """Put ``job`` back as the worker would after ``result`` (a Retry) and claim it again."""
    assert isinstance(result, Retry), result
    assert await rig.store.retry(job, run_after=rig.clock.now, error=result.error)
    return await rig.claim()


class TestRedeemedOnce:
    """A share is redeemed at most once, and never reported as anything but imported when it
    was: the ways an answered or ambiguous import could be misread."""

    async def test_another_notifications_session_is_never_adopted(self, rig: Rig) -> None:
        """Two shares of one customer share vendor_data; the list shows the first's session."""
        first = await rig.accept(key="a")
        second = await rig.accept(key="b")
        rig.fake.imports.append(httpx.Response(201, json=imported_body("sess-a")))
        assert await rig.handler(await rig.claim()) == Done()
        rig.fake.imports.append(httpx.ReadTimeout("lost"))  # the second one: ambiguous
        job = await rig.claim()
        job = await next_run(rig, job, await rig.handler(job))
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("sess-a", at=START)]})
        )
        rig.fake.imports.append(httpx.Response(201, json=imported_body("sess-b")))
        assert await rig.handler(job) == Done()
        done = await rig.store.load_notification(second)
        assert done is not None
        assert done.session is not None
        assert (done.status.value, done.session.session_id) == ("imported", "sess-b")
        assert await attempts(rig, second) == [
            ("import", AttemptResult.AMBIGUOUS),
            ("reconcile", "not_imported"),
            ("import", "imported"),
        ]
        original = await rig.store.load_notification(first)
        assert original is not None
        assert original.session is not None
        assert original.session.session_id == "sess-a"

    async def test_a_201_whose_outcome_was_not_recorded_is_not_imported_again(
        self, rig: Rig
    ) -> None:
        """The commit that records a 201 fails: the attempt stays ambiguous, so the next run
        reconciles and finds the session instead of sending a second import."""
        notification_id = await rig.accept()
        rig.fake.imports.append(httpx.Response(201, json=imported_body("new-1")))
        real = rig.store.record_outcome
        failures = [StoreUnavailable("disk I/O error")]

        async def failing_once(*args: Any, **kwargs: Any) -> bool:
            if failures:
                raise failures.pop()
            return await real(*args, **kwargs)

        rig.store.record_outcome = failing_once  # type: ignore[method-assign]
        job = await rig.claim()
        with pytest.raises(StoreUnavailable):
            await rig.handler(job)
        [attempt] = await rig.store.list_import_attempts(notification_id)
        assert is_ambiguous(attempt)
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("new-1", at=START)]})
        )
        assert await rig.handler(await rig.steal(job)) == Done()
        assert await status(rig, notification_id) == ("imported", None)
        assert rig.fake.import_calls == 1

    async def test_already_imported_after_an_ambiguous_attempt_is_never_rejected(
        self, rig: Rig
    ) -> None:
        """Didit's list lags its "already imported": reconcile again, never import again."""
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))  # not listed yet
        rig.fake.imports.append(httpx.Response(403, json=ALREADY))
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))  # still not
        result = await rig.handler(job)
        assert isinstance(result, Retry)
        assert await status(rig, notification_id) == ("pending", None)
        job = await next_run(rig, job, result)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))  # not even now
        job = await next_run(rig, job, await rig.handler(job))
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("ours", at=START)]})
        )
        assert await rig.handler(job) == Done()
        n = await rig.store.load_notification(notification_id)
        assert n is not None
        assert n.session is not None
        assert (n.status.value, n.session.session_id) == ("imported", "ours")
        assert rig.fake.import_calls == 2  # the lost one and the one that said "already"

    async def test_redeemed_but_never_listed_ends_imported_without_a_session(
        self, rig: Rig
    ) -> None:
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        rig.fake.imports.append(httpx.Response(403, json=ALREADY))
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        result = await rig.handler(job)
        assert isinstance(result, Retry)
        assert result.not_after is not None
        rig.clock.now = result.not_after  # the give-up time
        job = await next_run(rig, job, result)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        with capture_logs() as logs:
            assert await rig.handler(job) == Done()
        assert await status(rig, notification_id) == ("imported", "session_not_listed")
        [event] = await events(rig, notification_id)
        assert (event["type"], event["data"]["session"]) == ("share.imported", None)
        assert any(e["event"] == "alert" and e["kind"] == "session_not_listed" for e in logs)
        assert rig.fake.import_calls == 2

    async def test_undecided_until_the_give_up_time_then_failed_reconcile_unresolved(
        self, rig: Rig
    ) -> None:
        """Several candidate sessions, run after run: asked again until an hour past the
        deadline, then ``failed`` for an operator, never imported blindly."""
        notification_id, job = await ambiguous_first(rig)
        rows = {"results": [session_row("x", at=START), session_row("y", at=START)]}
        rig.fake.lists.append(httpx.Response(200, json=rows))
        result = await rig.handler(job)
        notification = await rig.store.load_notification(notification_id)
        assert notification is not None
        assert notification.deadline is not None
        give_up = notification.deadline + imports.RECONCILE_GIVE_UP_S
        assert isinstance(result, Retry)
        assert result.not_after == give_up
        rig.clock.now = give_up - 1
        job = await next_run(rig, job, result)
        rig.fake.lists.append(httpx.Response(200, json=rows))
        job = await next_run(rig, job, await rig.handler(job))  # still asking
        rig.clock.now = give_up
        rig.fake.lists.append(httpx.Response(200, json=rows))
        with capture_logs() as logs:
            assert await rig.handler(job) == Done()
        assert await status(rig, notification_id) == ("failed", "reconcile_unresolved")
        assert [e["kind"] for e in logs if e["event"] == "alert"] == ["reconcile_unresolved"]
        assert rig.fake.import_calls == 1

    async def test_a_403_in_other_words_after_an_ambiguous_attempt_is_not_judged_on_them(
        self, rig: Rig
    ) -> None:
        """Didit's 403 wording is not documented: after an ambiguous attempt of ours a bare
        "Forbidden." may refuse our own redeemed share. Later runs only list, never import."""
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        rig.fake.imports.append(httpx.Response(403, json={"detail": "Forbidden."}))
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        result = await rig.handler(job)
        assert isinstance(result, Retry)
        assert await status(rig, notification_id) == ("pending", None)
        job = await next_run(rig, job, result)
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("ours", at=START)]})
        )
        assert await rig.handler(job) == Done()
        assert await status(rig, notification_id) == ("imported", None)
        assert rig.fake.import_calls == 2
        assert [kind for kind, _ in await attempts(rig, notification_id)] == [
            "import",
            "reconcile",
            "import",
            "reconcile",
            "reconcile",
        ]

    async def test_already_imported_then_a_failing_list_is_asked_again(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        rig.fake.imports.append(httpx.Response(403, json=ALREADY))
        rig.fake.lists.append(httpx.Response(503, json={"message": "down"}))
        result = await rig.handler(job)
        assert isinstance(result, Retry)
        assert result.error.startswith("reconcile: ")
        assert await status(rig, notification_id) == ("pending", None)

    async def test_a_reopened_notification_gets_a_fresh_hour_to_reconcile(self, rig: Rig) -> None:
        """A token without exp: an operator's retry after ``reconcile_unresolved`` is not
        failed again at once by a give-up time measured from its receipt."""
        rig.fake.imports.append(httpx.ReadTimeout("lost"))
        notification_id = await rig.accept(deadline=None)
        job = await rig.claim()
        job = await next_run(rig, job, await rig.handler(job))
        rig.clock.now = START + imports.MAX_TOKEN_TTL_S + imports.RECONCILE_GIVE_UP_S
        rig.fake.lists.append(httpx.Response(503, json={"message": "down"}))
        assert await rig.handler(job) == Done()
        assert await status(rig, notification_id) == ("failed", "reconcile_unresolved")
        assert await rig.store.retry_notification(notification_id) == RetryResult.REQUEUED
        rig.fake.lists.append(httpx.Response(503, json={"message": "down"}))
        result = await rig.handler(await rig.claim())
        assert isinstance(result, Retry)
        assert result.not_after == rig.clock.now + imports.RECONCILE_GIVE_UP_S
        assert await status(rig, notification_id) == ("pending", None)


class TestDeadlinesAndTokens:
    async def test_past_the_deadline_expires_without_a_call(self, rig: Rig) -> None:
        notification_id = await rig.accept(deadline=START - 1)
        assert await rig.handler(await rig.claim()) == Done()
        assert await status(rig, notification_id) == ("expired", "share_token_expired")
        assert rig.fake.calls == []
        [event] = await events(rig, notification_id)
        assert event["type"] == "share.expired"

    async def test_the_deadline_passing_while_waiting_at_the_pacer_expires(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        store = open_store(f"sqlite:///{tmp_path}/p.db", clock=clock)
        pacer = Pacer(1, clock=clock, sleep=skip_ahead(clock))  # waiting carries time past it
        rig = Rig(store, clock, FakeDidit(), pacer)
        try:
            await pacer.acquire()  # the window's only send is used
            notification_id = await rig.accept(deadline=START + 5)
            assert await rig.handler(await rig.claim()) == Done()
            assert await status(rig, notification_id) == ("expired", "share_token_expired")
            assert rig.fake.calls == []
        finally:
            await rig.client.aclose()
            await store.close()

    async def test_stopping_while_waiting_at_the_pacer_releases_without_a_call(
        self, rig: Rig
    ) -> None:
        """Closed pacer (the bridge is stopping): nothing sent, nothing recorded, given back."""
        notification_id = await rig.accept()
        rig.pacer.close()
        assert await rig.handler(await rig.claim()) == Release()
        assert rig.fake.calls == []
        assert await attempts(rig, notification_id) == []
        assert await status(rig, notification_id) == ("pending", None)

    async def test_an_erased_token_fails_token_erased(self, rig: Rig, tmp_path: Path) -> None:
        notification_id = await rig.accept()
        with sqlite3.connect(tmp_path / "bridge.db") as db:
            db.execute("UPDATE notifications SET token = NULL WHERE id = ?", (notification_id,))
        assert await rig.handler(await rig.claim()) == Done()
        assert await status(rig, notification_id) == ("failed", "token_erased")
        assert rig.fake.calls == []

    async def test_an_already_final_notification_completes_its_job(self, rig: Rig) -> None:
        rig.fake.imports.append(httpx.Response(201, json=imported_body()))
        await rig.accept()
        job = await rig.claim()
        assert await rig.handler(job) == Done()
        assert await rig.handler(job) == Complete()
        assert rig.fake.import_calls == 1

    async def test_an_unknown_notification_completes_its_job(self, rig: Rig) -> None:
        await rig.accept()
        job = await rig.claim()
        ghost = Job(**{**_fields(job), "ref": "ntf_missing"})
        assert await rig.handler(ghost) == Complete()
        assert rig.fake.calls == []


def _fields(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in Job.__dataclass_fields__}


class StealingStore:
    """A real store that loses the lease right after ``verb`` succeeds."""

    def __init__(self, inner: Store, rig: Rig, verb: str) -> None:
        self._inner, self._rig, self._verb = inner, rig, verb
        self.stolen: Job | None = None

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name != self._verb:
            return target

        async def then_steal(job: Job, *args: Any, **kwargs: Any) -> Any:
            result = await target(job, *args, **kwargs)
            self.stolen = await self._rig.steal(job)
            return result

        return then_steal


class TestLeaseLost:
    async def test_lost_before_the_attempt_begins_calls_nothing(self, rig: Rig) -> None:
        notification_id = await rig.accept()
        old = await rig.claim()
        await rig.steal(old)
        assert await rig.handler(old) == Done()
        assert rig.fake.calls == []
        assert await rig.store.list_import_attempts(notification_id) == ()

    async def test_lost_during_the_call_leaves_it_for_the_new_owner_to_reconcile(
        self, rig: Rig
    ) -> None:
        notification_id = await rig.accept()
        old = await rig.claim()
        stolen: list[Job] = []

        async def answer_late(request: httpx.Request) -> httpx.Response:
            stolen.append(await rig.steal(old))
            return httpx.Response(201, json=imported_body())

        rig.fake.imports.append(answer_late)
        assert isinstance(await rig.handler(old), Retry)  # fenced out: the thief's job now
        assert await status(rig, notification_id) == ("pending", None)
        # the new owner sees an attempt without an end: it reconciles, it does not import again
        rig.fake.lists.append(
            httpx.Response(200, json={"results": [session_row("new-1", at=START)]})
        )
        assert await rig.handler(stolen[0]) == Done()
        assert await status(rig, notification_id) == ("imported", None)
        assert rig.fake.import_calls == 1

    async def test_lost_before_the_outcome_is_recorded_writes_nothing(self, rig: Rig) -> None:
        """Not even the attempt's end: the 201 and its outcome go together or not at all, so
        the new owner sees an ambiguous attempt and reconciles instead of importing again."""
        stealing = StealingStore(rig.store, rig, "begin_import_attempt")
        handler = imports.ImportHandler(
            store=stealing,
            client=rig.client,
            pacer=rig.pacer,
            settings=rig.handler._settings,
            clock=rig.clock,
        )
        rig.fake.imports.append(httpx.Response(201, json=imported_body()))
        notification_id = await rig.accept()
        with capture_logs() as logs:
            result = await handler(await rig.claim())
        assert isinstance(result, Retry)  # fenced out for this owner: the thief runs it
        assert await status(rig, notification_id) == ("pending", None)
        assert any(entry["event"] == "outcome_not_recorded" for entry in logs)
        assert await events(rig, notification_id) == []
        [attempt] = await rig.store.list_import_attempts(notification_id)
        assert is_ambiguous(attempt)

    async def test_lost_before_a_reconcile_begins_calls_nothing(self, rig: Rig) -> None:
        notification_id, job = await ambiguous_first(rig)
        await rig.steal(job)
        calls = len(rig.fake.calls)
        assert await rig.handler(job) == Done()
        assert len(rig.fake.calls) == calls
        assert len(await rig.store.list_import_attempts(notification_id)) == 1


class TestMetrics:
    async def test_outcomes_retries_and_reconciles_are_counted(self, rig: Rig) -> None:
        metrics = Metrics()
        handler = imports.ImportHandler(
            store=rig.store,
            client=rig.client,
            pacer=rig.pacer,
            settings=lambda: rig.settings,
            clock=rig.clock,
            metrics=metrics,
        )
        rig.fake.imports += [
            httpx.Response(429, json={"detail": "slow down"}, headers={"Retry-After": "1"}),
            httpx.Response(403, json={"detail": "Insufficient credits to import this session."}),
        ]
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        await rig.accept()
        job = await rig.claim()
        assert isinstance(await handler(job), Retry)
        await rig.store.retry(job, run_after=rig.clock.now, error="429")
        assert await handler(await rig.claim()) == Done()

        def sample(name: str, **labels: str) -> float | None:
            return metrics.registry.get_sample_value(name, labels)

        assert sample("bridge_imports_total", outcome="retry", reason="rate_limited") == 1
        assert sample("bridge_imports_total", outcome="failed", reason="upstream_forbidden") == 1
        assert sample("bridge_reconciliations_total", result="not_imported") == 1

    async def test_an_import_without_a_session_alerts_and_still_counts_its_erasure(
        self, rig: Rig
    ) -> None:
        metrics = Metrics()
        rig.handler._metrics = metrics
        notification_id, job = await ambiguous_first(rig)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        rig.fake.imports.append(httpx.Response(403, json=ALREADY))
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        result = await rig.handler(job)
        assert isinstance(result, Retry)
        assert result.not_after is not None
        rig.clock.now = result.not_after
        job = await next_run(rig, job, result)
        rig.fake.lists.append(httpx.Response(200, json={"results": []}))
        assert await rig.handler(job) == Done()
        assert await status(rig, notification_id) == ("imported", "session_not_listed")

        def sample(name: str, **labels: str) -> float | None:
            return metrics.registry.get_sample_value(name, labels)

        assert sample("bridge_alerts_total", kind="session_not_listed") == 1
        assert sample("bridge_token_erasures_total") == 1
