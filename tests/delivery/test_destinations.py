"""Destination health and isolation: 410 disables, enable resumes, limits, a hanging neighbour."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bridge.cli import build_parser
from bridge.store import Store
from tests.delivery.helpers import (
    config_file,
    delivering,
    destination,
    make_settings,
    seed_events,
)
from tests.delivery.sink import Answer, running_sink
from tests.support.waiting import wait_until_async

pytestmark = pytest.mark.anyio


def run_cli(*argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    code: int = args.run(args)
    return code


async def statuses(store: Store, destination_name: str) -> dict[str, int]:
    states = {state.name: state for state in await store.destination_states()}
    state = states[destination_name]
    return {"pending": state.pending, "dead": state.dead, "enabled": int(state.enabled)}


class TestGone:
    async def test_410_disables_and_enable_resumes_with_nothing_lost(
        self, store: Store, tmp_path: Path
    ) -> None:
        """A 410 disables the destination (alert logged), its deliveries wait; ``bridge
        destinations enable`` resumes them and every event arrives."""
        with running_sink([]) as sink:
            sink.script(Answer(410, body=b"gone"))
            settings = make_settings({"crm": destination(sink.url, max_in_flight=1)})
            events = await seed_events(store, 4, ["crm"])
            config_path = config_file(tmp_path, {"crm": destination(sink.url)})
            with capture_logs() as logs:
                async with delivering(store, settings):
                    await wait_until_async(lambda: sink.count() == 1, "sink.count() == 1")
                    await _until(store, lambda s: s["enabled"] == 0)
                    # Room for a wrongly allowed POST (asserted below): nothing here waits on a
                    # time a test clock could move.
                    await asyncio.sleep(0.3)
                    assert sink.count() == 1
                    assert await statuses(store, "crm") == {"pending": 4, "dead": 0, "enabled": 0}
                    code = await asyncio.to_thread(
                        run_cli, "destinations", "enable", "crm", "--config", str(config_path)
                    )
                    assert code == 0
                    await _until(store, lambda s: s["pending"] == 0)
            received = sink.snapshot()
        assert await statuses(store, "crm") == {"pending": 0, "dead": 0, "enabled": 1}
        delivered = {r.webhook_id for r in received[1:]}
        assert delivered == {event.id for event in events}
        alerts = [entry for entry in logs if entry["event"] == "destination_disabled"]
        assert len(alerts) == 1
        assert alerts[0]["log_level"] == "error"
        assert alerts[0]["destination"] == "crm"


class TestIsolation:
    async def test_a_hanging_destination_does_not_delay_another(self, store: Store) -> None:
        """While every POST to one sink hangs, the other sink gets all its events at once."""
        with running_sink([]) as slow, running_sink([]) as fast:
            slow.respond_with(lambda _r, _i: Answer(200, hang_s=30.0))
            settings = make_settings(
                {
                    "slow": destination(slow.url, max_in_flight=2, timeout_s=30),
                    "fast": destination(fast.url, max_in_flight=2),
                }
            )
            await seed_events(store, 10, ["slow"])  # claimed first: the older jobs
            fast_events = await seed_events(store, 30, ["fast"])
            async with delivering(store, settings):
                started = time.monotonic()
                await wait_until_async(
                    lambda: fast.count() == 30, "fast.count() == 30", timeout_s=5.0
                )
                fast_done_s = time.monotonic() - started
                assert slow.count() == 2  # its max_in_flight, every one still hanging
                slow.release()
                await _until(store, lambda s: s["pending"] == 0, name="slow")
        assert {r.webhook_id for r in fast.snapshot()} == {e.id for e in fast_events}
        assert fast_done_s < 5.0

    async def test_max_in_flight_bounds_concurrent_posts(self, store: Store) -> None:
        """A destination never has more than ``max_in_flight`` POSTs open at once."""
        with running_sink([]) as sink:
            sink.respond_with(lambda _r, _i: Answer(200, hang_s=30.0))
            settings = make_settings({"crm": destination(sink.url, max_in_flight=3)})
            await seed_events(store, 8, ["crm"])
            async with delivering(store, settings, concurrency=8):
                await wait_until_async(lambda: sink.count() == 3, "sink.count() == 3")
                # Room for a fourth POST (asserted below): the limit is a count, not a time.
                await asyncio.sleep(0.3)
                assert sink.count() == 3
                sink.release()
                await _until(store, lambda s: s["pending"] == 0)
        assert sink.count() == 8

    async def test_rate_limit_per_second(self, store: Store) -> None:
        """20/s with a one-second burst: 40 deliveries take at least a second."""
        with running_sink([]) as sink:
            settings = make_settings(
                {"crm": destination(sink.url, rate_limit_per_second=20, max_in_flight=8)}
            )
            await seed_events(store, 40, ["crm"])
            async with delivering(store, settings):
                await wait_until_async(lambda: sink.count() == 40, "sink.count() == 40")
            received = sink.snapshot()
        span = received[-1].at - received[0].at
        assert span >= (40 - 20) / 20 * 0.9
        first_second = [r for r in received if r.at - received[0].at < 0.5]
        assert len(first_second) <= 20 + 10 + 1


class TestConfiguration:
    async def test_a_destination_missing_from_the_config_waits(self, store: Store) -> None:
        """A delivery to a destination no longer configured is kept and retried, never lost."""
        with running_sink([]) as sink:
            without = make_settings({"other": destination(sink.url)})
            with_it = make_settings({"crm": destination(sink.url)})
            current = [without]
            [event] = await seed_events(store, 1, ["crm"])
            with capture_logs() as logs:
                async with delivering(store, lambda: current[0], unconfigured_retry_s=0.1):
                    await tries_while_unconfigured(logs, 3)
                    assert sink.count() == 0
                    unconfigured = await statuses(store, "crm")
                    assert unconfigured == {"pending": 1, "dead": 0, "enabled": 1}
                    current[0] = with_it
                    await wait_until_async(lambda: sink.count() == 1, "sink.count() == 1")
                    await _until(store, lambda s: s["pending"] == 0)
        assert sink.snapshot()[0].webhook_id == event.id

    async def test_waiting_for_its_destination_spends_no_retry_step(self, store: Store) -> None:
        """However long the config misses it, the delivery keeps its whole retry schedule."""
        with running_sink([]) as sink:
            sink.respond_with(lambda _r, _i: Answer(500))
            without = make_settings({"other": destination(sink.url)})
            with_it = make_settings({"crm": destination(sink.url)})  # 3 retry steps
            current = [without]
            await seed_events(store, 1, ["crm"])
            with capture_logs() as logs:
                async with delivering(store, lambda: current[0], unconfigured_retry_s=0.05):
                    await tries_while_unconfigured(logs, 8)  # more than the schedule has steps
                    assert sink.count() == 0
                    current[0] = with_it
                    await _until(store, lambda s: s["dead"] == 1)
        assert sink.count() == 4  # the first POST and every one of its 3 retries


async def tries_while_unconfigured(logs: list[MutableMapping[str, Any]], count: int) -> None:
    await wait_until_async(
        lambda: sum(e["event"] == "destination_not_configured" for e in logs) >= count,
        f"{count} tries while the destination is not configured",
    )


async def _until(
    store: Store, predicate: Callable[[dict[str, int]], bool], *, name: str = "crm"
) -> None:
    await wait_until_async(lambda: statuses(store, name), f"{name}'s state", holds=predicate)
