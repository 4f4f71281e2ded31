"""Slowing a partner whose tokens Didit keeps rejecting, and the claim's sharing rules built
from the config (``bridge.pipeline.fair_share``)."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from bridge.observability import Metrics
from bridge.pipeline import ImportHandler, RejectionWatch, fair_share
from bridge.pipeline.fair_share import ALERT_KIND, SLOWED_AFTER, SLOWED_IMPORTS_PER_MINUTE
from tests.intake.conftest import load_settings
from tests.pipeline.conftest import Rig, imported_body
from tests.store.helpers import FakeClock

pytestmark = pytest.mark.anyio


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


class TestRejectionWatch:
    def test_a_partner_whose_tokens_keep_being_rejected_is_slowed_with_an_alert(self) -> None:
        """Five rejections in a minute: slowed, one alert line, the alert counted, gauge 1."""
        clock, metrics = FakeClock(0.0), Metrics()
        watch = RejectionWatch(clock=clock, metrics=metrics)
        with capture_logs() as logs:
            for _ in range(SLOWED_AFTER - 1):
                watch.observe("flooder", rejected=True)
                clock.advance(1.0)
            assert watch.slowed() == frozenset()
            watch.observe("flooder", rejected=True)
            watch.observe("flooder", rejected=True)  # still slowed: no second alert
        assert watch.slowed() == {"flooder"}
        alerts = [line for line in logs if line["event"] == "alert"]
        assert [(a["kind"], a["partner"], a["log_level"]) for a in alerts] == [
            (ALERT_KIND, "flooder", "error")
        ]
        assert sample(metrics, "bridge_alerts_total", kind=ALERT_KIND) == 1
        assert sample(metrics, "bridge_partner_slowed", partner="flooder") == 1

    def test_rejections_among_mostly_good_tokens_slow_nothing(self) -> None:
        """A partner with more imported than rejected in the minute keeps its pace."""
        watch = RejectionWatch(clock=FakeClock(0.0))
        for _ in range(SLOWED_AFTER + 1):
            watch.observe("busy", rejected=True)
            watch.observe("busy", rejected=False)
            watch.observe("busy", rejected=False)
        assert watch.slowed() == frozenset()

    def test_other_partners_are_not_slowed(self) -> None:
        """Only the partner whose tokens were rejected is slowed."""
        watch = RejectionWatch(clock=FakeClock(0.0))
        for _ in range(SLOWED_AFTER):
            watch.observe("flooder", rejected=True)
            watch.observe("honest", rejected=False)
        assert watch.slowed() == {"flooder"}

    def test_a_slowed_partner_recovers_when_the_rejections_stop(self) -> None:
        """A minute without rejections (or without imports at all) ends the slowdown."""
        clock, metrics = FakeClock(0.0), Metrics()
        watch = RejectionWatch(clock=clock, metrics=metrics)
        for _ in range(SLOWED_AFTER):
            watch.observe("flooder", rejected=True)
        assert watch.slowed() == {"flooder"}
        clock.advance(30.0)
        assert watch.slowed() == {"flooder"}
        with capture_logs() as logs:
            clock.advance(30.0)
            assert watch.slowed() == frozenset()
        assert [line["event"] for line in logs] == ["partner_recovered"]
        assert sample(metrics, "bridge_partner_slowed", partner="flooder") == 0


class TestFairShare:
    def test_configured_caps_and_the_pace(self) -> None:
        """``max_imports_per_minute`` becomes the partner's cap; the pace is the pacer's."""
        settings = load_settings(partner_options={"hooli": {"max_imports_per_minute": 12}})
        share = fair_share(settings, frozenset(), pace_s=0.5)
        assert share.caps == {"hooli": 12}
        assert share.pace_s == 0.5
        assert share.no_jumps == frozenset()

    def test_a_slowed_partner_is_capped_and_may_not_jump(self) -> None:
        """Slowed: the lower of its cap and the slowed rate, and no jumping ahead."""
        settings = load_settings(partner_options={"hooli": {"max_imports_per_minute": 100}})
        share = fair_share(settings, frozenset({"hooli", "acme"}), pace_s=0.2)
        assert share.caps == {
            "hooli": SLOWED_IMPORTS_PER_MINUTE, "acme": SLOWED_IMPORTS_PER_MINUTE,
        }  # fmt: skip
        assert share.no_jumps == {"hooli", "acme"}


class TestHandlerFeedsTheWatch:
    @pytest.mark.parametrize(
        ("reply", "slowed"),
        [
            (httpx.Response(401, json={"detail": "Invalid or expired share token."}), True),
            (httpx.Response(201, json=imported_body()), False),
        ],
    )
    async def test_didit_answers_are_counted_for_the_partner(
        self, rig: Rig, clock: FakeClock, reply: httpx.Response, slowed: bool
    ) -> None:
        """Each rejected token counts against its partner; imported ones do not."""
        watch = RejectionWatch(clock=clock)
        handler = ImportHandler(
            store=rig.store,
            client=rig.client,
            pacer=rig.pacer,
            settings=lambda: rig.settings,
            clock=clock,
            rejections=watch,
        )
        for k in range(SLOWED_AFTER):
            await rig.accept(key=f"k{k}")
            rig.fake.imports.append(reply)
            await handler(await rig.claim())
        assert watch.slowed() == ({"acme"} if slowed else frozenset())
