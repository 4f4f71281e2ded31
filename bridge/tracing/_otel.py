"""The OpenTelemetry implementation of ``bridge.tracing.Tracing``: the SDK's tracer provider, a
batching span processor and the OTLP/HTTP exporter, W3C trace context in and out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Final

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.typing import EventDict, Processor, WrappedLogger

from bridge.tracing import Attribute, Span, TelemetryOptions

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_PREFIX: Final = "bridge."
_KINDS: Final[Mapping[str, SpanKind]] = {"import": SpanKind.CONSUMER, "delivery": SpanKind.CLIENT}


class _OtelSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, **attributes: Attribute) -> None:
        for name, value in attributes.items():
            if value is not None:
                self._span.set_attribute(_PREFIX + name, value)

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(self._span))
        return carrier.get("traceparent")


def _ids(span: trace.Span) -> dict[str, str]:
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def add_trace_ids(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog: the current span's ``trace_id`` and ``span_id`` on the line."""
    event_dict.update(_ids(trace.get_current_span()))
    return event_dict


class OtelTracing:
    """``Tracing`` with the OpenTelemetry SDK; build it with :meth:`start`."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("share-bridge")

    @classmethod
    def start(cls, options: TelemetryOptions | None, environ: Mapping[str, str]) -> OtelTracing:
        """The SDK set up from the ``telemetry`` section, the ``OTEL_*`` variables filling in
        what it leaves out (and naming the service when ``OTEL_SERVICE_NAME`` is set)."""
        endpoint = None
        attributes: dict[str, str] = {}
        sampler = None
        if options is not None:
            if options.otlp_endpoint is not None:
                endpoint = options.otlp_endpoint.rstrip("/") + "/v1/traces"
            if not environ.get("OTEL_SERVICE_NAME"):
                attributes[SERVICE_NAME] = options.service_name
            sampler = ParentBased(TraceIdRatioBased(options.sample_ratio))
        elif not environ.get("OTEL_SERVICE_NAME"):
            attributes[SERVICE_NAME] = "share-bridge"
        provider = TracerProvider(resource=Resource.create(attributes), sampler=sampler)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider)

    def intake(self, headers: Mapping[str, str]) -> AbstractContextManager[Span]:
        parent = _PROPAGATOR.extract(
            {name: headers[name] for name in ("traceparent", "tracestate") if name in headers}
        )
        return self._span("intake", parent, SpanKind.SERVER, {})

    def job(
        self, name: str, traceparent: str | None, **attributes: Attribute
    ) -> AbstractContextManager[Span]:
        parent = _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})
        return self._span(name, parent, _KINDS.get(name, SpanKind.INTERNAL), attributes, True)

    def step(self, name: str, **attributes: Attribute) -> AbstractContextManager[Span]:
        return self._span(name, None, SpanKind.CLIENT, attributes)

    @contextmanager
    def _span(
        self,
        name: str,
        parent: Context | None,
        kind: SpanKind,
        attributes: Mapping[str, Attribute],
        bind_ids: bool = False,
    ) -> Iterator[Span]:
        # Exceptions are marked on the span by type only: their text may quote input.
        with self._tracer.start_as_current_span(
            name, context=parent, kind=kind, record_exception=False
        ) as otel_span:
            span = _OtelSpan(otel_span)
            span.set(**attributes)
            if bind_ids:
                # The worker's line for this job attempt comes after the span: it keeps the ids.
                structlog.contextvars.bind_contextvars(**_ids(otel_span))
            yield span

    def log_processor(self) -> Processor:
        return add_trace_ids

    def shutdown(self) -> None:
        self._provider.shutdown()
