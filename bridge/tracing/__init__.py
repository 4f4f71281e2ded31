"""Traces of a notification's life, behind a small interface that intake, imports and deliveries
call; OpenTelemetry is imported only when traces are configured.

One trace per notification: the ``intake`` span (a child of the partner's ``traceparent`` when it
sends one) is stored with the notification as a W3C ``traceparent``, so every later ``import``
run, its ``didit.import_shared`` and ``didit.reconcile`` calls and every ``delivery`` attempt
join that trace, even in another process after a restart. A delivery carries its span as
``traceparent``. Spans hold ids, names and outcome codes only: never a token or a secret.

:func:`start_tracing` answers None when traces are off; intake then pays one ``None`` check and
the pipeline calls :data:`NO_TRACING`, whose spans do nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Final, Protocol

from structlog.typing import Processor

__all__ = [
    "NO_TRACING",
    "Attribute",
    "Span",
    "TelemetryOptions",
    "Tracing",
    "start_tracing",
    "traces_configured",
]

Attribute = str | int | float | bool | None


class Span(Protocol):
    def set(self, **attributes: Attribute) -> None:
        """Add attributes (None values are left out)."""

    def traceparent(self) -> str | None:
        """This span as a W3C ``traceparent`` value (None when it is not recorded)."""


class Tracing(Protocol):
    def intake(self, headers: Mapping[str, str]) -> AbstractContextManager[Span]:
        """A partner's notification being answered; continues the partner's ``traceparent``."""

    def job(
        self, name: str, traceparent: str | None, **attributes: Attribute
    ) -> AbstractContextManager[Span]:
        """A job run (``import``, ``delivery``) in the trace stored with its notification."""

    def step(self, name: str, **attributes: Attribute) -> AbstractContextManager[Span]:
        """A call inside the current span (``didit.import_shared``, ``didit.reconcile``)."""

    def log_processor(self) -> Processor:
        """A structlog processor adding ``trace_id`` and ``span_id`` of the current span."""

    def shutdown(self) -> None:
        """Send what is buffered and stop."""


class _NoSpan:
    def set(self, **attributes: Attribute) -> None:
        return None

    def traceparent(self) -> str | None:
        return None


_NO_SPAN: Final = _NoSpan()


@contextmanager
def _no_span() -> Iterator[Span]:
    yield _NO_SPAN


class _NoTracing:
    def intake(self, headers: Mapping[str, str]) -> AbstractContextManager[Span]:
        return _no_span()

    def job(
        self, name: str, traceparent: str | None, **attributes: Attribute
    ) -> AbstractContextManager[Span]:
        return _no_span()

    def step(self, name: str, **attributes: Attribute) -> AbstractContextManager[Span]:
        return _no_span()

    def log_processor(self) -> Processor:
        return lambda _logger, _method, event_dict: event_dict

    def shutdown(self) -> None:
        return None


#: Traces off: every span does nothing.
NO_TRACING: Final[Tracing] = _NoTracing()


class TelemetryOptions(Protocol):
    """The ``telemetry`` section of the configuration (``bridge.config.TelemetrySettings``)."""

    @property
    def otlp_endpoint(self) -> str | None: ...
    @property
    def service_name(self) -> str: ...
    @property
    def sample_ratio(self) -> float: ...


_ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def traces_configured(options: TelemetryOptions | None, environ: Mapping[str, str]) -> bool:
    """Traces are on with a ``telemetry`` section or an ``OTEL_EXPORTER_OTLP_*ENDPOINT``
    variable, unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return options is not None or any(environ.get(name) for name in _ENDPOINT_VARIABLES)


def start_tracing(options: TelemetryOptions | None, environ: Mapping[str, str]) -> Tracing | None:
    """OpenTelemetry tracing exporting by OTLP/HTTP, or None when traces are not configured.

    Raises ``RuntimeError`` when they are but the ``otel`` extra is not installed.
    """
    if not traces_configured(options, environ):
        return None
    try:
        from bridge.tracing._otel import OtelTracing  # imported only when configured
    except ImportError as exc:
        raise RuntimeError(
            "telemetry is configured but OpenTelemetry is not installed: "
            "pip install 'share-bridge[otel]'"
        ) from exc
    return OtelTracing.start(options, environ)
