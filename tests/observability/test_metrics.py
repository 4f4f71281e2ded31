from __future__ import annotations

from collections.abc import Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bridge.observability import SNAPSHOT_GAUGES, Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: Metrics) -> tuple[dict[str, str], Samples]:
    """Render and parse like Prometheus: family types by name, and every sample's value."""
    body, content_type = metrics.render()
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture(name="metrics")
def _metrics() -> Metrics:
    return Metrics()


class TestExposition:
    def test_every_instrument_is_exposed_with_its_type(self, metrics: Metrics) -> None:
        """The page parses and declares each bridge_ family with the right type."""
        types, _ = scrape(metrics)
        # prometheus-client adds a *_created gauge per unlabelled counter and histogram.
        declared = {name: kind for name, kind in types.items() if not name.endswith("_created")}
        assert declared == {
            "bridge_notifications_received": "counter",
            "bridge_intake_latency_seconds": "histogram",
            "bridge_imports": "counter",
            "bridge_import_latency_seconds": "histogram",
            "bridge_reconciliations": "counter",
            "bridge_upstream_429": "counter",
            "bridge_pacer_wait_seconds": "counter",
            "bridge_deliveries": "counter",
            "bridge_token_erasures": "counter",
            "bridge_history_deletions": "counter",
            "bridge_alerts": "counter",
            "bridge_queue_depth": "gauge",
            "bridge_oldest_pending_age_seconds": "gauge",
            "bridge_dead_deliveries": "gauge",
            "bridge_disabled_destinations": "gauge",
            "bridge_partner_slowed": "gauge",
        }

    def test_instances_do_not_share_a_registry(self) -> None:
        """Two apps (or tests) count separately."""
        first, second = Metrics(), Metrics()
        first.upstream_429.inc()
        assert value(scrape(first)[1], "bridge_upstream_429_total") == 1.0
        assert value(scrape(second)[1], "bridge_upstream_429_total") == 0.0


class TestCounters:
    def test_labelled_counters_move_value_by_value(self, metrics: Metrics) -> None:
        """Each increment shows in the scrape under its own labels."""
        metrics.notifications_received.labels(partner="acme", result="accepted").inc()
        metrics.notifications_received.labels(partner="acme", result="accepted").inc()
        metrics.notifications_received.labels(partner="acme", result="duplicate").inc()
        metrics.imports.labels(outcome="rejected", reason="already_imported").inc()
        metrics.reconciliations.labels(result="found").inc()
        metrics.deliveries.labels(destination="crm", result="delivered").inc(3)
        metrics.alerts.labels(kind="destination_disabled").inc()
        metrics.token_erasures.inc(2)
        metrics.history_deletions.inc(5)
        metrics.pacer_wait_seconds.inc(0.25)
        metrics.pacer_wait_seconds.inc(0.5)
        _, samples = scrape(metrics)
        received = "bridge_notifications_received_total"
        assert value(samples, received, partner="acme", result="accepted") == 2.0
        assert value(samples, received, partner="acme", result="duplicate") == 1.0
        assert value(samples, received, partner="acme", result="refused") is None
        assert (
            value(samples, "bridge_imports_total", outcome="rejected", reason="already_imported")
            == 1.0
        )
        assert value(samples, "bridge_reconciliations_total", result="found") == 1.0
        assert (
            value(samples, "bridge_deliveries_total", destination="crm", result="delivered") == 3.0
        )
        assert value(samples, "bridge_alerts_total", kind="destination_disabled") == 1.0
        assert value(samples, "bridge_token_erasures_total") == 2.0
        assert value(samples, "bridge_history_deletions_total") == 5.0
        assert value(samples, "bridge_pacer_wait_seconds_total") == 0.75

    def test_histograms_count_and_sum(self, metrics: Metrics) -> None:
        """Latencies land in buckets, count and sum."""
        metrics.intake_latency.observe(0.004)
        metrics.intake_latency.observe(0.2)
        metrics.import_latency.observe(1.5)
        _, samples = scrape(metrics)
        assert value(samples, "bridge_intake_latency_seconds_count") == 2.0
        assert value(samples, "bridge_intake_latency_seconds_sum") == pytest.approx(0.204)
        assert value(samples, "bridge_intake_latency_seconds_bucket", le="0.005") == 1.0
        assert value(samples, "bridge_intake_latency_seconds_bucket", le="+Inf") == 2.0
        assert value(samples, "bridge_import_latency_seconds_bucket", le="1.0") == 0.0
        assert value(samples, "bridge_import_latency_seconds_bucket", le="2.5") == 1.0


class TestSnapshotGauges:
    def test_gauges_are_read_at_each_scrape(self, metrics: Metrics) -> None:
        """The callback is called per scrape, so the gauges follow the store."""
        state: dict[str, float] = {"queue_depth": 5, "oldest_pending_age_seconds": 12.5}
        metrics.set_snapshot_source(lambda: dict(state))
        _, samples = scrape(metrics)
        assert value(samples, "bridge_queue_depth") == 5.0
        assert value(samples, "bridge_oldest_pending_age_seconds") == 12.5
        state.update(queue_depth=0, dead_deliveries=2, disabled_destinations=1)
        _, samples = scrape(metrics)
        assert value(samples, "bridge_queue_depth") == 0.0
        assert value(samples, "bridge_dead_deliveries") == 2.0
        assert value(samples, "bridge_disabled_destinations") == 1.0

    def test_without_a_source_gauges_have_no_sample(self, metrics: Metrics) -> None:
        """No number is better than a made-up zero."""
        _, samples = scrape(metrics)
        for key in SNAPSHOT_GAUGES:
            assert value(samples, f"bridge_{key}") is None

    def test_unknown_keys_are_ignored(self, metrics: Metrics) -> None:
        """Only the documented gauges are exposed."""
        metrics.set_snapshot_source(lambda: {"queue_depth": 1, "surprise": 9})
        types, samples = scrape(metrics)
        assert "bridge_surprise" not in types
        assert value(samples, "bridge_queue_depth") == 1.0

    def test_a_non_numeric_value_does_not_fail_the_scrape(self, metrics: Metrics) -> None:
        """A bad snapshot is treated like a failing one."""
        metrics.set_snapshot_source(lambda: {"queue_depth": "many"})  # type: ignore[dict-item]
        with capture_logs() as logs:
            _, samples = scrape(metrics)
        assert value(samples, "bridge_queue_depth") is None
        assert [entry["event"] for entry in logs] == ["metrics_snapshot_failed"]

    def test_a_failing_source_does_not_fail_the_scrape(self, metrics: Metrics) -> None:
        """A store outage leaves the gauges empty and logs a warning; counters still render."""

        def broken() -> Mapping[str, float]:
            raise ConnectionError("store down")

        metrics.set_snapshot_source(broken)
        metrics.upstream_429.inc()
        with capture_logs() as logs:
            _, samples = scrape(metrics)
        assert value(samples, "bridge_queue_depth") is None
        assert value(samples, "bridge_upstream_429_total") == 1.0
        assert [entry["event"] for entry in logs] == ["metrics_snapshot_failed"]
