"""The demo's sink, served for real on 127.0.0.1, fed by the bridge's own outbound signer."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from bridge.sandbox.sink import Sink, SinkEndpoint
from bridge.sandbox.threaded import serve_in_thread
from bridge.signing import StandardWebhooksSigner

OLD = "whsec_" + base64.b64encode(b"old-secret-old-secret-old-secret").decode()
NEW = "whsec_" + base64.b64encode(b"new-secret-new-secret-new-secret").decode()
OTHER = "whsec_" + base64.b64encode(b"someone-else-entirely-0123456789").decode()


def event(event_id: str, notification_id: str = "ntf_1") -> bytes:
    body = {"type": "share.imported", "id": event_id, "data": {"notification_id": notification_id}}
    return orjson.dumps(body)


def signed(
    body: bytes, event_id: str, secrets: list[str], *, at: float | None = None
) -> dict[str, str]:
    timestamp = int(time.time() if at is None else at)
    headers = StandardWebhooksSigner(secrets).headers(event_id, timestamp, body)
    return {**headers, "content-type": "application/json"}


@pytest.fixture
def sink() -> Sink:
    return Sink([SinkEndpoint("crm", (NEW,), fail_first=2), SinkEndpoint("audit", (OLD,))])


@pytest.fixture
def client(sink: Sink) -> Iterator[httpx.Client]:
    with serve_in_thread(sink.app) as url, httpx.Client(base_url=url, timeout=5) as http:
        yield http


def test_a_rotation_verifies_when_the_consumer_knows_only_the_new_secret(
    sink: Sink, client: httpx.Client
) -> None:
    body = event("evt_1")
    for _ in range(2):  # the first two requests to crm meet a sink that is down
        down = client.post("/hooks/crm", content=body, headers=signed(body, "evt_1", [OLD, NEW]))
        assert down.status_code == 503
    answer = client.post("/hooks/crm", content=body, headers=signed(body, "evt_1", [OLD, NEW]))
    assert answer.status_code == 200
    report = sink.report()
    assert report.verified_pairs() == {("evt_1", "crm")}
    assert report.unavailable == {"crm": 2}
    assert report.requests == {"crm": 3}
    assert report.receipts[0].notification_id == "ntf_1"
    assert report.receipts[0].event_type == "share.imported"


def test_a_forged_signature_is_rejected_and_counted(sink: Sink, client: httpx.Client) -> None:
    body = event("evt_2")
    answer = client.post("/hooks/audit", content=body, headers=signed(body, "evt_2", [OTHER]))
    assert answer.status_code == 401
    report = sink.report()
    assert report.rejected == {"audit": 1}
    assert report.receipts == ()


def test_a_signature_from_the_retired_secret_alone_is_rejected_after_the_rotation(
    sink: Sink, client: httpx.Client
) -> None:
    body = event("evt_3")
    for _ in range(2):
        client.post("/hooks/crm", content=body, headers=signed(body, "evt_3", [NEW]))
    answer = client.post("/hooks/crm", content=body, headers=signed(body, "evt_3", [OLD]))
    assert answer.status_code == 401
    assert sink.report().rejected == {"crm": 1}


def test_a_tampered_body_a_stale_timestamp_and_missing_headers_are_rejected(
    sink: Sink, client: httpx.Client
) -> None:
    body = event("evt_4")
    tampered = client.post(
        "/hooks/audit", content=event("evt_4", "ntf_other"), headers=signed(body, "evt_4", [OLD])
    )
    stale = client.post(
        "/hooks/audit", content=body, headers=signed(body, "evt_4", [OLD], at=time.time() - 3600)
    )
    bare = client.post("/hooks/audit", content=body, headers={"content-type": "application/json"})
    garbage = client.post(
        "/hooks/audit",
        content=b"\xff\xfe",
        headers={
            "webhook-id": "x",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "no-comma",
        },
    )
    assert [r.status_code for r in (tampered, stale, bare, garbage)] == [401, 401, 401, 401]
    assert sink.report().rejected == {"audit": 4}


def test_an_event_whose_id_differs_from_its_webhook_id_is_rejected(
    sink: Sink, client: httpx.Client
) -> None:
    body = event("evt_5")
    answer = client.post("/hooks/audit", content=body, headers=signed(body, "evt_other", [OLD]))
    assert answer.status_code == 401
    not_an_event = b"[1, 2]"
    answer = client.post(
        "/hooks/audit", content=not_an_event, headers=signed(not_an_event, "evt_6", [OLD])
    )
    assert answer.status_code == 401
    assert sink.report().rejected == {"audit": 2}


def test_an_unknown_hook_is_404(client: httpx.Client) -> None:
    assert client.post("/hooks/nowhere", content=b"{}").status_code == 404


def test_a_repeated_delivery_is_recorded_each_time_with_its_own_time() -> None:
    clock = iter([10.0, 12.0])
    sink = Sink([SinkEndpoint("audit", (OLD,))], clock=lambda: next(clock))
    body = event("evt_7")
    with serve_in_thread(sink.app) as url, httpx.Client(base_url=url, timeout=5) as http:
        for _ in range(2):
            assert (
                http.post("/hooks/audit", content=body, headers=signed(body, "evt_7", [OLD]))
            ).status_code == 200
    report = sink.report()
    assert [r.received_at for r in report.receipts] == [10.0, 12.0]
    assert report.verified_pairs() == {("evt_7", "audit")}


def test_a_sink_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Sink([])
