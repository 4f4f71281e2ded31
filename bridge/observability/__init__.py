"""What the bridge tells its operators: redacted logs (``redaction``), their setup (``logs``)
and Prometheus metrics (``metrics``), one module each; the names most callers need are here."""

from __future__ import annotations

from bridge.observability.logs import (
    configure_logging,
    get_logger,
    new_request_id,
    render_exception,
    reset_logging,
    start_log_context,
)
from bridge.observability.metrics import (
    METRICS_CONTENT_TYPE,
    SNAPSHOT_GAUGES,
    UNKNOWN_PARTNER,
    Metrics,
    SnapshotSource,
)
from bridge.observability.redaction import (
    REDACTED,
    REDACTED_JWT,
    Redactor,
    without_jwts,
    without_url_credentials,
)

__all__ = [
    "METRICS_CONTENT_TYPE",
    "REDACTED",
    "REDACTED_JWT",
    "SNAPSHOT_GAUGES",
    "UNKNOWN_PARTNER",
    "Metrics",
    "Redactor",
    "SnapshotSource",
    "configure_logging",
    "get_logger",
    "new_request_id",
    "render_exception",
    "reset_logging",
    "start_log_context",
    "without_jwts",
    "without_url_credentials",
]
