"""Intake's canonical ``request`` line and its metrics: intake writes both itself (it bypasses
Starlette's middleware, ``RequestLog`` included), once per request, whatever the answer."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from starlette.types import Message

from bridge.observability import Metrics
from bridge.store import Store
from tests.intake.conftest import Harness, error_code, load_settings, share_token
from tests.ops.scenario import parse_metrics, value
from tests.store.helpers import FakeClock
from tests.support.logs import captured_logs, json_lines

pytestmark = pytest.mark.anyio
RECEIVED = "bridge_notifications_received_total"


@pytest.fixture(name="stream")
def _stream() -> Iterator[io.StringIO]:
    with captured_logs("info") as out:
        yield out


@pytest.fixture(name="metrics")
def _metrics() -> Metrics:
    return Metrics()


@pytest.fixture(name="counted")
async def _counted(store: Store, clock: FakeClock, metrics: Metrics) -> AsyncIterator[Harness]:
    harness = Harness(load_settings(), store, clock, metrics=metrics)
    yield harness
    await harness.client.aclose()


def request_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in json_lines(stream) if line["event"] == "request"]


async def test_one_line_per_answer_with_its_outcome(
    counted: Harness, metrics: Metrics, stream: io.StringIO
) -> None:
    token = share_token()
    accepted = await counted.post("acme", {"share_token": token, "customer": "c-1"})
    duplicate = await counted.post("acme", {"share_token": token, "customer": "c-1"})
    unknown = await counted.post("evil%20name", {"share_token": token}, signed=False)
    unsigned = await counted.post("acme", {"share_token": token}, signed=False)
    assert [r.status_code for r in (accepted, duplicate, unknown, unsigned)] == [202, 200, 404, 401]

    first, second, third, fourth = request_lines(stream)
    assert first["notification_id"] == accepted.json()["id"] == second["notification_id"]
    assert (first["partner"], first["outcome"], first["http_status"]) == ("acme", "accepted", 202)
    assert first["rule"] in {rule.name for rule in counted.settings.rules}
    assert (first["method"], first["path"]) == ("POST", "/v1/partners/acme/shares")
    assert (first["level"], isinstance(first["duration_ms"], float)) == ("info", True)
    assert (second["partner"], second["outcome"]) == ("acme", "duplicate")
    # A name that is not configured never reaches a log field or a label as sent.
    assert (third["partner"], third["outcome"], third["http_status"]) == (
        "_unknown",
        "unknown_partner",
        404,
    )
    assert "rule" not in third
    assert "notification_id" not in third
    assert (fourth["outcome"], fourth["http_status"]) == (error_code(unsigned), 401)
    ids = {line["request_id"] for line in (first, second, third, fourth)}
    assert len(ids) == 4
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert token not in stream.getvalue()

    samples = parse_metrics(metrics.render()[0].decode())
    assert value(samples, RECEIVED, {"partner": "acme", "result": "accepted"}) == 1
    assert value(samples, RECEIVED, {"partner": "acme", "result": "duplicate"}) == 1
    assert value(samples, RECEIVED, {"partner": "_unknown", "result": "unknown_partner"}) == 1
    assert value(samples, RECEIVED, {"partner": "acme", "result": error_code(unsigned)}) == 1
    assert value(samples, "bridge_intake_latency_seconds_count") == 4


async def test_a_long_partner_segment_is_logged_cut(counted: Harness, stream: io.StringIO) -> None:
    """A stranger's 10 000-character path costs the log a bounded prefix, not the whole."""
    name = "x" * 10_000
    assert (await counted.post(name, {"share_token": "t"}, signed=False)).status_code == 404
    (line,) = request_lines(stream)
    assert line["path"].startswith("/v1/partners/xxx")
    assert len(line["path"]) <= 260


async def test_a_bug_is_answered_500_with_a_code_and_logged(
    counted: Harness, stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the store")

    monkeypatch.setattr(counted.store, "accept", broken)
    response = await counted.post("acme", {"share_token": share_token(), "customer": "c"})
    assert (response.status_code, error_code(response)) == (500, "internal_error")
    assert "a bug" not in response.text  # the answer says nothing of the inside
    [line] = request_lines(stream)
    assert (line["outcome"], line["http_status"]) == ("internal_error", 500)
    [failure] = [entry for entry in json_lines(stream) if entry["event"] == "intake_failed"]
    assert failure["request_id"] == line["request_id"]  # the traceback joins its request
    assert "RuntimeError" in failure["exception"]


async def test_other_methods_and_paths_do_not_reach_intake(
    counted: Harness, metrics: Metrics, stream: io.StringIO
) -> None:
    wrong_method = await counted.client.get("/v1/partners/acme/shares")
    assert (wrong_method.status_code, error_code(wrong_method)) == (405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"
    assert (await counted.client.head("/v1/partners/acme/shares")).status_code == 405
    nested = await counted.client.post("/v1/partners/acme/x/shares", content=b"{}")
    assert (nested.status_code, error_code(nested)) == (404, "not_found")
    escaped = await counted.client.post("/v1/partners/a%2Fb/shares", content=b"{}")
    assert (escaped.status_code, error_code(escaped)) == (404, "not_found")  # a "/" in a name
    assert request_lines(stream) == []  # intake wrote nothing: Starlette answered
    samples = parse_metrics(metrics.render()[0].decode())
    assert value(samples, "bridge_intake_latency_seconds_count") == 0


async def test_a_partner_gone_before_the_body_ended_is_400_and_nothing_is_stored(
    counted: Harness, stream: io.StringIO
) -> None:
    body = orjson.dumps({"share_token": share_token(), "customer": "c"})
    headers = counted.sign("acme", body)
    messages: list[Message] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/partners/acme/shares",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    await counted.app(scope, receive, send)
    assert sent[0]["status"] == 400
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "client_disconnected"
    [line] = request_lines(stream)
    assert line["outcome"] == "client_disconnected"
    assert await counted.store.list_notifications() == []
