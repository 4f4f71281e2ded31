"""When traces are on, how the ``telemetry`` section is checked, what a reload says about it,
and that the store keeps a notification's trace context."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge import config
from bridge.cli.service import _restart_only_changes
from bridge.errors import ConfigError
from bridge.store import NewNotification, open_store
from bridge.tracing import start_tracing, traces_configured
from bridge.types import Route, SessionKind
from tests.ops.scenario import TARGET
from tests.support.bridge_process import make_config

SECTION = config.TelemetrySettings(otlp_endpoint="http://collector:4318")


@pytest.mark.parametrize(
    ("section", "environ", "on"),
    [
        (None, {}, False),
        (SECTION, {}, True),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        (None, {"OTEL_SERVICE_NAME": "bridge"}, False),  # a name alone sends nothing
        (SECTION, {"OTEL_SDK_DISABLED": "true"}, False),
        (SECTION, {"OTEL_TRACES_EXPORTER": "none"}, False),
        (
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"},
            False,
        ),
    ],
)
def test_traces_are_on_only_when_configured(
    section: config.TelemetrySettings | None, environ: Mapping[str, str], on: bool
) -> None:
    assert traces_configured(section, environ) is on


def test_not_configured_means_no_tracing() -> None:
    assert start_tracing(None, {"OTEL_SERVICE_NAME": "bridge"}) is None


def test_configured_without_the_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bridge.tracing._otel", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r"pip install 'share-bridge\[otel\]'"):
        start_tracing(SECTION, {})


def _settings(**telemetry: Any) -> config.Settings:
    document = make_config(TARGET, db_path=Path("/unused.db"), port=0)
    document["telemetry"] = telemetry
    return config.load_text(yaml.safe_dump(document))


@pytest.mark.parametrize(
    ("telemetry", "field"),
    [
        ({"otlp_endpoint": "collector:4318"}, "otlp_endpoint"),
        ({"sample_ratio": 1.5}, "sample_ratio"),
        ({"sample_ratio": -0.1}, "sample_ratio"),
        ({"endpoint": "http://collector:4318"}, "endpoint"),
    ],
)
def test_a_bad_telemetry_section_is_refused_by_field(telemetry: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(**telemetry)
    assert any(field in str(issue) for issue in refused.value.issues)


def test_a_reload_that_changes_telemetry_says_it_needs_a_restart() -> None:
    before = _settings(otlp_endpoint="http://collector:4318")
    assert _restart_only_changes(before, before) == []
    assert _restart_only_changes(before, _settings(sample_ratio=0.5)) == ["telemetry"]


def test_the_store_keeps_the_trace_context(tmp_path: Path) -> None:
    """What intake stores comes back with the notification, in a later store too."""
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    route = Route(rule="kyc", workflow_id="w", vendor_data="v", trust_review=False, destinations=())

    def new(key: str, trace: str | None) -> NewNotification:
        return NewNotification(
            partner="acme",
            partner_event_id=None,
            message_id=None,
            business_key=key,
            token="t",
            token_sha256=key,
            session_kind=SessionKind.USER,
            source_application_id=None,
            source_session_id=None,
            deadline=None,
            route=route,
            trace_context=trace,
        )

    async def scenario() -> list[str | None]:
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
        store = open_store(url, clock=lambda: 1_000.0)
        traced = await store.accept(new("k1", traceparent))
        untraced = await store.accept(new("k2", None))
        await store.close()
        store = open_store(url, clock=lambda: 1_000.0)
        try:
            found = [await store.load_notification(n.id) for n in (traced, untraced)]
            listed = {n.id: n.trace_context for n in await store.list_notifications(limit=10)}
        finally:
            await store.close()
        assert listed == {traced.id: traceparent, untraced.id: None}
        return [n.trace_context if n is not None else "missing" for n in found]

    assert asyncio.run(scenario()) == [traceparent, None]
