"""The Prometheus instruments of one app (``Metrics``) and the gauges read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.observability.logs import get_logger

SnapshotSource = Callable[[], Mapping[str, float]]

#: The partner label of a notification for a partner not configured (so a URL cannot grow the
#: label set).
UNKNOWN_PARTNER: Final = "_unknown"

SNAPSHOT_GAUGES: Final[Mapping[str, str]] = {
    "queue_depth": "Notifications waiting to be imported.",
    "oldest_pending_age_seconds": "Age of the oldest pending notification.",
    "dead_deliveries": "Deliveries that exhausted their retry schedule.",
    "disabled_destinations": "Destinations disabled (for example after a 410).",
}

# What generate_latest writes. prometheus-client >= 0.22 labels its CONTENT_TYPE_LATEST 1.0.0 while
# still writing this format when no Accept header asks otherwise; every scraper reads 0.0.4.
METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_INTAKE_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_IMPORT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)


class _SnapshotCollector(Collector):
    """Gauges read from the store at scrape time, through a sync callback the app sets."""

    def __init__(self) -> None:
        self.source: SnapshotSource | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for key, doc in SNAPSHOT_GAUGES.items():
            yield GaugeMetricFamily(f"bridge_{key}", doc)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self._read()
        for key, doc in SNAPSHOT_GAUGES.items():
            family = GaugeMetricFamily(f"bridge_{key}", doc)
            if key in values:
                family.add_metric([], values[key])
            yield family

    def _read(self) -> dict[str, float]:
        if self.source is None:
            return {}
        try:
            snapshot = self.source()
            return {key: float(snapshot[key]) for key in SNAPSHOT_GAUGES if key in snapshot}
        except Exception:  # noqa: BLE001 - a failing store must not fail the scrape
            get_logger().warning("metrics_snapshot_failed", exc_info=True)
            return {}


class Metrics:
    """The Prometheus instruments of one app, in their own registry (so tests can build several).

    Label values must come from bounded sets (configured partner names, outcome codes); an
    unknown partner is counted as ``partner="_unknown"``, never by the name in the URL.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.notifications_received = Counter(
            "bridge_notifications_received", "Partner notifications by partner and result.",
            ["partner", "result"], registry=r,
        )  # fmt: skip
        self.intake_latency = Histogram(
            "bridge_intake_latency_seconds", "Time to answer a partner notification.",
            registry=r, buckets=_INTAKE_BUCKETS,
        )  # fmt: skip
        self.imports = Counter(
            "bridge_imports", "Import attempts by outcome and reason.",
            ["outcome", "reason"], registry=r,
        )  # fmt: skip
        self.import_latency = Histogram(
            "bridge_import_latency_seconds", "Duration of import-shared calls to Didit.",
            registry=r, buckets=_IMPORT_BUCKETS,
        )  # fmt: skip
        self.reconciliations = Counter(
            "bridge_reconciliations", "Reconciliations after ambiguous attempts, by result.",
            ["result"], registry=r,
        )  # fmt: skip
        self.upstream_429 = Counter("bridge_upstream_429", "429 answers from Didit.", registry=r)
        self.pacer_wait_seconds = Counter(
            "bridge_pacer_wait_seconds", "Seconds imports waited for the quota pacer.", registry=r
        )
        self.deliveries = Counter(
            "bridge_deliveries", "Delivery attempts by destination and result.",
            ["destination", "result"], registry=r,
        )  # fmt: skip
        self.token_erasures = Counter(
            "bridge_token_erasures", "Share tokens erased after their notification was final.",
            registry=r,
        )  # fmt: skip
        self.history_deletions = Counter(
            "bridge_history_deletions",
            "Final notifications deleted with their history, older than store.retention_days.",
            registry=r,
        )  # fmt: skip
        self.alerts = Counter("bridge_alerts", "Alerts raised, by kind.", ["kind"], registry=r)
        self.partners_slowed = Gauge(
            "bridge_partner_slowed",
            "1 while a partner's imports are slowed because Didit keeps rejecting its tokens.",
            ["partner"], registry=r,
        )  # fmt: skip
        self._snapshot = _SnapshotCollector()
        r.register(self._snapshot)

    def set_snapshot_source(self, source: SnapshotSource | None) -> None:
        """Set the sync callback read at each scrape for the gauges in ``SNAPSHOT_GAUGES``.

        It returns a mapping from gauge key (``queue_depth``...) to value; a missing key leaves
        that gauge without a sample. It must not block: return a cached store snapshot.
        """
        self._snapshot.source = source

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type, for ``GET /metrics``."""
        return _generate_latest(self.registry), METRICS_CONTENT_TYPE
