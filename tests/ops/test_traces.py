"""OpenTelemetry traces end to end: ``bridge serve`` exports by OTLP/HTTP to a receiver in this
test, which decodes each export with opentelemetry-proto. One notification makes one trace, from
the partner's ``traceparent`` through intake, every import run with its Didit calls, and the
delivery, whose ``traceparent`` reaches the sink; a restart between intake and import keeps it
one trace. No span attribute holds a token or a secret."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import rules_to, tokens
from tests.support.bridge_process import ADMIN_TOKEN, PARTNERS, BridgeProcess, SandboxTarget
from tests.support.fixtures import MakeBridge
from tests.support.recording_sink import SINK_SECRET, RecordingSink
from tests.support.waiting import wait_until

PARTNER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARTNER_SPAN = "00f067aa0ba902b7"
PARTNER_TRACEPARENT = f"00-{PARTNER_TRACE}-{PARTNER_SPAN}-01"


@dataclass(frozen=True)
class ExportedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    service: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


class OtlpReceiver:
    """An OTLP/HTTP traces endpoint (``POST /v1/traces``, protobuf) that keeps every span."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                status = 404
                if self.path == "/v1/traces":
                    receiver.take(body)
                    status = 200
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    exported = ExportedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        service=str(resource.get("service.name")),
                    )
                    with self.lock:
                        self.spans.append(exported)

    def wait_for(self, names: list[str], timeout_s: float = 20.0) -> list[ExportedSpan]:
        """Every span so far, once spans with ``names`` (with repeats) have all arrived."""

        def arrived(spans: list[ExportedSpan]) -> bool:
            seen = [span.name for span in spans]
            return all(seen.count(name) >= names.count(name) for name in names)

        return wait_until(
            self.received, f"spans {sorted(names)}", holds=arrived, timeout_s=timeout_s
        )

    def received(self) -> list[ExportedSpan]:
        with self.lock:
            return list(self.spans)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within 0.1 s, not 5 s
    receiving = OtlpReceiver()
    thread = threading.Thread(target=receiving.server.serve_forever, daemon=True)
    thread.start()
    yield receiving
    receiving.server.shutdown()
    receiving.server.server_close()


def traced_bridge(
    make_bridge: MakeBridge, target: SandboxTarget, receiver: OtlpReceiver, sink: RecordingSink
) -> BridgeProcess:
    return make_bridge(
        rules=rules_to(target, "crm"),
        destinations={"crm": sink.destination()},
        extra={
            "telemetry": {
                "otlp_endpoint": receiver.url,
                "service_name": "bridge-under-test",
                "sample_ratio": 1.0,
            }
        },
    )


def secrets_of(target: SandboxTarget, share: str) -> list[str]:
    values = [share, target.api_key, target.webhook_secret, ADMIN_TOKEN, SINK_SECRET]
    for block in PARTNERS.values():
        for name in ("secrets", "keys"):
            values += block.get(name, [])
        if "key" in block:
            values.append(block["key"])
    return values


def assert_no_secret(spans: list[ExportedSpan], secrets: list[str]) -> None:
    for span in spans:
        for name, value in span.attributes.items():
            text = str(value)
            assert "eyJ" not in text, (span.name, name)
            for secret in secrets:
                assert secret not in text, (span.name, name)
                assert secret.removeprefix("whsec_") not in text, (span.name, name)


def assert_traceparent(value: str, trace_id: str, parent_id: str) -> None:
    """A W3C traceparent naming this trace and parent, sampled (other flag bits are free)."""
    version, trace, parent, flags = value.split("-")
    assert (version, trace, parent) == ("00", trace_id, parent_id)
    assert int(flags, 16) & 1


def by_name(spans: list[ExportedSpan], name: str) -> list[ExportedSpan]:
    return [span for span in spans if span.name == name]


def children(spans: list[ExportedSpan], parent: ExportedSpan) -> list[ExportedSpan]:
    return [span for span in spans if span.parent_id == parent.span_id]


@pytest.mark.e2e
def test_one_trace_from_the_partner_through_reconcile_to_the_sink(
    make_bridge: MakeBridge,
    control: SandboxControl,
    target: SandboxTarget,
    receiver: OtlpReceiver,
    sink: RecordingSink,
) -> None:
    """An import whose answer is lost is reconciled, then delivered: intake, two import runs
    (the call, then the reconcile) and the delivery, all in the partner's trace."""
    bridge = traced_bridge(make_bridge, target, receiver, sink)
    control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["504"])
    [share] = tokens(control, target, 1)
    accepted = bridge.post_share(
        "acme",
        {"share_token": share, "customer": "c1"},
        headers={"traceparent": PARTNER_TRACEPARENT},
    )
    assert accepted.status_code == 202
    notification_id = accepted.json()["id"]
    assert bridge.wait_for([notification_id]) == {notification_id: "imported"}

    spans = receiver.wait_for(
        ["intake", "import", "import", "didit.import_shared", "didit.reconcile", "delivery"]
    )
    assert {span.trace_id for span in spans} == {PARTNER_TRACE}
    assert {span.service for span in spans} == {"bridge-under-test"}
    [intake] = by_name(spans, "intake")
    assert intake.parent_id == PARTNER_SPAN
    assert intake.attributes["bridge.notification_id"] == notification_id
    assert intake.attributes["bridge.partner"] == "acme"
    assert intake.attributes["bridge.rule"] == "all-to-kyc"
    assert intake.attributes["bridge.outcome"] == "accepted"

    imports = by_name(spans, "import")
    assert [span.parent_id for span in imports] == [intake.span_id] * 2
    assert all(span.attributes["bridge.notification_id"] == notification_id for span in imports)
    assert all(span.attributes["bridge.rule"] == "all-to-kyc" for span in imports)
    outcomes = sorted(str(span.attributes["bridge.outcome"]) for span in imports)
    assert outcomes == ["imported", "retry"]
    calls = sorted(child.name for span in imports for child in children(spans, span))
    assert calls == ["didit.import_shared", "didit.reconcile"]
    [reconcile] = by_name(spans, "didit.reconcile")
    assert reconcile.attributes["bridge.result"] == "imported"

    [delivery] = by_name(spans, "delivery")
    assert delivery.parent_id == intake.span_id
    assert delivery.attributes["bridge.destination"] == "crm"
    assert delivery.attributes["bridge.partner"] == "acme"
    assert delivery.attributes["bridge.rule"] == "all-to-kyc"
    assert delivery.attributes["bridge.outcome"] == "delivered"
    [headers] = sink.headers
    assert_traceparent(headers["traceparent"], PARTNER_TRACE, delivery.span_id)

    assert_no_secret(spans, secrets_of(target, share))
    lines = [line for line in bridge.log_lines() if line.get("notification_id") == notification_id]
    assert lines
    assert {line.get("trace_id") for line in lines} == {PARTNER_TRACE}
    span_ids = {span.span_id for span in spans}
    assert {line.get("span_id") for line in lines} <= span_ids


@pytest.mark.e2e
def test_a_restart_between_intake_and_import_keeps_one_trace(
    make_bridge: MakeBridge,
    control: SandboxControl,
    target: SandboxTarget,
    receiver: OtlpReceiver,
    sink: RecordingSink,
) -> None:
    """Didit throttles until the bridge is restarted: the next process's import and delivery
    join the trace the first process started (its context is stored with the notification)."""
    bridge = traced_bridge(make_bridge, target, receiver, sink)
    control.set_faults("import", throttle_rate=1.0, retry_after_s=1)
    [share] = tokens(control, target, 1)
    accepted = bridge.post_share("acme", {"share_token": share, "customer": "c1"})
    assert accepted.status_code == 202
    notification_id = accepted.json()["id"]
    receiver.wait_for(["intake", "import"])
    assert bridge.terminate() == 0
    first_run = len(receiver.spans)
    control.clear_faults()
    bridge.start()
    assert bridge.wait_for([notification_id]) == {notification_id: "imported"}

    spans = receiver.wait_for(["intake", "import", "import", "delivery"])
    [intake] = by_name(spans, "intake")
    assert intake.parent_id == ""  # no traceparent from the partner: a new trace
    assert {span.trace_id for span in spans} == {intake.trace_id}
    later = spans[first_run:]
    assert {span.name for span in later} >= {"import", "delivery", "didit.import_shared"}
    assert all(
        span.parent_id == intake.span_id for span in later if span.name != "didit.import_shared"
    )
    [delivery] = by_name(spans, "delivery")
    [headers] = sink.headers
    assert_traceparent(headers["traceparent"], intake.trace_id, delivery.span_id)
    assert_no_secret(spans, secrets_of(target, share))


def test_nothing_of_opentelemetry_is_imported_without_telemetry(tmp_path: Path) -> None:
    """Without a telemetry section or an OTEL_* endpoint, building the service, accepting a
    notification (with a partner's traceparent) and running the import worker on it imports no
    opentelemetry module."""
    script = r"""
import asyncio, sys, time
import httpx, orjson, yaml
from bridge import auth, config
from bridge.cli.service import Service
from tests.intake.conftest import TARGET, share_token
from tests.support.bridge_process import make_config
from tests.support.waiting import wait_until_async

path, db = sys.argv[1], sys.argv[2]
open(path, "w").write(yaml.safe_dump(make_config(TARGET, db_path=db, port=8080)))
settings = config.load(path)
service = Service(settings, config_path=path)

async def main() -> tuple[int, list[str]]:
    body = orjson.dumps({"share_token": share_token(exp=time.time() + 3600), "customer": "c1"})
    headers = auth.partner_headers(
        settings.partners["hooli"].auth, body, now=time.time(), message_id="m1")
    headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    transport = httpx.ASGITransport(app=service.app)
    async with service.app.rest.router.lifespan_context(service.app.rest):
        async with httpx.AsyncClient(transport=transport, base_url="http://bridge") as client:
            answer = await client.post("/v1/partners/hooli/shares", content=body, headers=headers)
        attempts = await wait_until_async(  # the worker tries Didit (nothing listens there)
            lambda: service.store.list_import_attempts(answer.json()["id"]), "an import attempt"
        )
    return answer.status_code, [attempt.kind.value for attempt in attempts]

status, attempts = asyncio.run(main())
loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
sys.stderr.write(orjson.dumps({"status": status, "attempts": attempts, "loaded": loaded}).decode())
"""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "bridge.yaml"), str(tmp_path / "bridge.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stderr.strip().splitlines()[-1])
    assert report["status"] == 202
    assert report["attempts"] == ["import"]
    assert report["loaded"] == []
