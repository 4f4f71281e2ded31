"""The deliver worker against real sinks on 127.0.0.1: signing, retries, Retry-After, dead."""

from __future__ import annotations

import asyncio
import itertools
import time
from email.utils import formatdate

import orjson
import pytest

from bridge.delivery import USER_AGENT
from bridge.store import DeliveryStatus, Store
from tests.delivery.helpers import (
    NEW_SECRET,
    SECRET,
    delivering,
    destination,
    make_settings,
    seed_events,
)
from tests.delivery.sink import Answer, running_sink
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio

SCHEDULE_S = (0.2, 0.4, 0.6)
SLACK_S = 0.25  # claim and HTTP overhead a wait may add on top of its jittered step


async def deliveries_of(store: Store, notification_id: str) -> list[DeliveryStatus]:
    timeline = await store.timeline(notification_id)
    assert timeline is not None
    return [delivery.status for delivery in timeline.deliveries]


class TestSigning:
    async def test_every_delivery_verifies_during_a_rotation(self, store: Store) -> None:
        """With two secrets configured, a consumer holding either one verifies every delivery."""
        with running_sink([SECRET, NEW_SECRET]) as sink:
            settings = make_settings({"crm": destination(sink.url, secrets=[SECRET, NEW_SECRET])})
            events = await seed_events(store, 5, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 5, "sink.count() == 5")
            received = sink.snapshot()
        assert all(request.verified == (True, True) for request in received)
        assert {r.webhook_id for r in received} == {event.id for event in events}
        by_id = {event.id: event.body for event in events}
        for request in received:
            assert request.body == by_id[request.webhook_id]
            assert request.headers["content-type"] == "application/json"
            assert request.headers["user-agent"] == USER_AGENT
            assert request.headers["user-agent"].startswith("share-bridge/")
            assert len(request.headers["webhook-signature"].split()) == 2
            assert orjson.loads(request.body)["id"] == request.webhook_id

    async def test_a_consumer_with_another_secret_does_not_verify(self, store: Store) -> None:
        """The sink's check can fail: a secret the destination does not sign with fails it."""
        with running_sink([NEW_SECRET]) as sink:
            settings = make_settings({"crm": destination(sink.url)})
            await seed_events(store, 1, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 1, "sink.count() == 1")
        assert sink.snapshot()[0].verified == (False,)


class TestRetries:
    async def test_three_500s_then_200_follow_the_schedule(self, store: Store) -> None:
        """Four POSTs, one webhook-id, identical bodies, waits within the jitter of the schedule."""
        with running_sink([SECRET]) as sink:
            sink.script(Answer(500), Answer(500), Answer(500), Answer(200))
            schedule = [f"{round(step * 1000)}ms" for step in SCHEDULE_S]
            settings = make_settings({"crm": destination(sink.url, retry_schedule=schedule)})
            [event] = await seed_events(store, 1, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 4, "sink.count() == 4")
            received = sink.snapshot()
        assert len(received) == 4
        assert {r.webhook_id for r in received} == {event.id}
        assert {r.body for r in received} == {event.body}
        assert all(r.verified == (True,) for r in received)
        waits = [later.at - earlier.at for earlier, later in itertools.pairwise(received)]
        for wait, step in zip(waits, SCHEDULE_S, strict=True):
            assert step * 0.8 <= wait <= step * 1.2 + SLACK_S, (waits, SCHEDULE_S)

    async def test_attempts_are_kept_with_status_latency_and_excerpt(self, store: Store) -> None:
        """Each attempt is stored: its HTTP status, latency and the first 2 KB of the answer."""
        with running_sink([SECRET]) as sink:
            sink.script(Answer(500, body=b"x" * 5000), Answer(200, body=b"thanks"))
            settings = make_settings({"crm": destination(sink.url)})
            [event] = await seed_events(store, 1, ["crm"])
            notification_id = orjson.loads(event.body)["data"]["notification_id"]
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 2, "sink.count() == 2")
                await _until_status(store, notification_id, DeliveryStatus.DELIVERED)
        timeline = await store.timeline(notification_id)
        assert timeline is not None
        first, second = timeline.delivery_attempts
        assert (first.http_status, second.http_status) == (500, 200)
        assert first.response_excerpt == b"x" * 2048
        assert second.response_excerpt == b"thanks"
        assert first.error == "HTTP 500"
        assert second.error is None
        assert all(attempt.latency_ms >= 0 for attempt in timeline.delivery_attempts)

    async def test_past_the_schedule_the_delivery_is_dead_and_redeliver_sends_it(
        self, store: Store
    ) -> None:
        """Four failures with a three-step schedule: dead; ``redeliver`` sends it once more."""
        with running_sink([SECRET]) as sink:
            sink.respond_with(lambda _r, index: Answer(500) if index < 4 else Answer(200))
            settings = make_settings({"crm": destination(sink.url)})
            [event] = await seed_events(store, 1, ["crm"])
            notification_id = orjson.loads(event.body)["data"]["notification_id"]
            async with delivering(store, settings):
                await _until_status(store, notification_id, DeliveryStatus.DEAD)
                assert sink.count() == 4
                timeline = await store.timeline(notification_id)
                assert timeline is not None
                assert await store.redeliver(timeline.deliveries[0].id)
                await _until_status(store, notification_id, DeliveryStatus.DELIVERED)
            received = sink.snapshot()
        assert len(received) == 5
        assert {r.webhook_id for r in received} == {event.id}
        assert {r.body for r in received} == {event.body}

    async def test_a_timeout_is_a_failure(self, store: Store) -> None:
        """No answer within timeout_s: a failed attempt with no status, then a retry."""
        with running_sink([SECRET]) as sink:
            sink.script(Answer(200, hang_s=3.0))
            settings = make_settings({"crm": destination(sink.url, timeout_s=0.3)})
            [event] = await seed_events(store, 1, ["crm"])
            notification_id = orjson.loads(event.body)["data"]["notification_id"]
            async with delivering(store, settings):
                await _until_status(store, notification_id, DeliveryStatus.DELIVERED)
        timeline = await store.timeline(notification_id)
        assert timeline is not None
        first = timeline.delivery_attempts[0]
        assert first.http_status is None
        assert first.error is not None
        assert "0.3s" in first.error
        assert sink.count() == 2


class TestRetryAfter:
    @pytest.mark.parametrize("status", [429, 503])
    async def test_seconds(self, store: Store, status: int) -> None:
        """``Retry-After: 1`` on a 429/503 delays the next POST a second, not the 100 ms step."""
        with running_sink([SECRET]) as sink:
            sink.script(Answer(status, headers={"retry-after": "1"}))
            settings = make_settings({"crm": destination(sink.url)})
            await seed_events(store, 1, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 2, "sink.count() == 2")
            first, second = sink.snapshot()
        assert 1.0 <= second.at - first.at <= 1.0 + SLACK_S

    async def test_http_date(self, store: Store) -> None:
        """An HTTP-date Retry-After is honoured too (its one-second resolution allowed for)."""
        with running_sink([SECRET]) as sink:
            sink.respond_with(
                lambda _r, index: (
                    Answer(503, headers={"retry-after": formatdate(time.time() + 2, usegmt=True)})
                    if index == 0
                    else Answer(200)
                )
            )
            settings = make_settings({"crm": destination(sink.url)})
            await seed_events(store, 1, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 2, "sink.count() == 2")
            first, second = sink.snapshot()
        assert 1.0 <= second.at - first.at <= 2.0 + SLACK_S

    @pytest.mark.parametrize("headers", [{}, {"retry-after": "0"}], ids=["none", "shorter"])
    async def test_a_429_follows_the_schedule_unless_asked_to_wait_longer(
        self, store: Store, headers: dict[str, str]
    ) -> None:
        """A 429 with nothing to honour is an ordinary failure; ``Retry-After: 0`` does not
        run the schedule out at once either: the step still applies."""
        with running_sink([SECRET]) as sink:
            sink.script(Answer(429, headers=headers))
            settings = make_settings({"crm": destination(sink.url)})
            await seed_events(store, 1, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 2, "sink.count() == 2")
            first, second = sink.snapshot()
        assert 0.08 <= second.at - first.at <= 0.12 + SLACK_S


class TestAbort:
    async def test_abort_message_stops_retries(self, store: Store) -> None:
        """``webhook-delivery: abort-message`` makes the delivery dead after one attempt."""
        with running_sink([SECRET]) as sink:
            sink.respond_with(
                lambda _r, _i: Answer(400, headers={"webhook-delivery": "abort-message"})
            )
            settings = make_settings({"crm": destination(sink.url)})
            [event] = await seed_events(store, 1, ["crm"])
            notification_id = orjson.loads(event.body)["data"]["notification_id"]
            async with delivering(store, settings):
                await _until_status(store, notification_id, DeliveryStatus.DEAD)
                dead_at = sink.count()
                await _settle(0.4)
        assert dead_at == 1
        assert sink.count() == 1


async def _until_status(store: Store, notification_id: str, status: DeliveryStatus) -> None:
    await wait_until_async(
        lambda: deliveries_of(store, notification_id),
        f"the delivery {status}",
        holds=lambda found: found == [status],
    )


async def _settle(seconds: float) -> None:
    """Give a wrongly scheduled retry the time to happen (the assertion is on what the sink got).
    Real time: the worker finds due jobs by polling on the event loop, which no test clock moves."""
    await asyncio.sleep(seconds)
