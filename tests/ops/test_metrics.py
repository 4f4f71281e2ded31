"""``/metrics`` parses with prometheus-client's own parser, and its series move exactly with a
scenario run against a live ``bridge serve`` (the Didit sandbox upstream, a sink downstream)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import Samples, parse_metrics, rules_to, tokens, value
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.fixtures import MakeBridge
from tests.support.recording_sink import RecordingSink
from tests.support.waiting import wait_until

RECEIVED = "bridge_notifications_received_total"
IMPORTS = "bridge_imports_total"
DELIVERIES = "bridge_deliveries_total"


def scrape(bridge: BridgeProcess) -> Samples:
    answer = bridge.http.get(f"{bridge.base_url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return parse_metrics(answer.text)


def until(
    bridge: BridgeProcess, ready: Callable[[Samples], bool], timeout_s: float = 15.0
) -> Samples:
    """Scrape until ``ready`` holds (the workers finish in the background); the last scrape."""
    return wait_until(lambda: scrape(bridge), "the metrics", holds=ready, timeout_s=timeout_s)


@pytest.mark.e2e
def test_counters_follow_the_scenario(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget, sink: RecordingSink
) -> None:
    """Each intake answer, import outcome, delivery, alert and gauge is counted exactly."""
    bridge = make_bridge(rules=rules_to(target, "crm"), destinations={"crm": sink.destination()})
    before = scrape(bridge)
    assert value(before, RECEIVED, {"partner": "acme", "result": "accepted"}) == 0
    assert value(before, "bridge_queue_depth") == 0

    # Intake: 3 accepted, 1 duplicate, 1 unknown partner, 1 bad signature.
    shares = tokens(control, target, 6)
    ids = [
        bridge.post_share("acme", {"share_token": t, "customer": f"c{i}"}, message_id=f"m{i}")
        for i, t in enumerate(shares[:3])
    ]
    assert [r.status_code for r in ids] == [202, 202, 202]
    duplicate = bridge.post_share(
        "acme", {"share_token": shares[0], "customer": "c0"}, message_id="m0"
    )
    assert duplicate.status_code == 200
    unknown = bridge.http.post(
        f"{bridge.base_url}/v1/partners/nobody/shares",
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    assert unknown.status_code == 404
    forged = bridge.post_share(
        "acme",
        {"share_token": shares[3], "customer": "x"},
        headers={"webhook-signature": "v1,AAAA"},
    )
    assert forged.status_code == 401
    bridge.wait_for([r.json()["id"] for r in ids])
    after = until(
        bridge, lambda s: value(s, DELIVERIES, {"destination": "crm", "result": "delivered"}) == 3
    )
    assert value(after, RECEIVED, {"partner": "acme", "result": "accepted"}) == 3
    assert value(after, RECEIVED, {"partner": "acme", "result": "duplicate"}) == 1
    assert value(after, RECEIVED, {"partner": "_unknown", "result": "unknown_partner"}) == 1
    assert value(after, RECEIVED, {"partner": "acme", "result": "invalid_signature"}) == 1
    assert value(after, "bridge_intake_latency_seconds_count") == 6
    assert value(after, IMPORTS, {"outcome": "imported", "reason": ""}) == 3
    assert value(after, "bridge_import_latency_seconds_count") == 3
    assert value(after, "bridge_token_erasures_total") == 3
    assert value(after, "bridge_queue_depth") == 0
    assert value(after, "bridge_dead_deliveries") == 0
    assert value(after, "bridge_disabled_destinations") == 0
    assert len(sink.bodies) == 3

    # Downstream says 410: the destination is disabled, an alert counted, the delivery waits.
    sink.status = 410
    gone = bridge.post_share("acme", {"share_token": shares[4], "customer": "c4"})
    assert gone.status_code == 202
    disabled = until(bridge, lambda s: value(s, "bridge_disabled_destinations") == 1)
    assert value(disabled, "bridge_alerts_total", {"kind": "destination_disabled"}) == 1
    assert value(disabled, DELIVERIES, {"destination": "crm", "result": "disable"}) == 1
    assert value(disabled, IMPORTS, {"outcome": "imported", "reason": ""}) == 4

    # Didit throttles once (429), then answers: one retry, one 429, then imported.
    control.set_faults("import", throttle_rate=1.0, retry_after_s=1)
    throttled = bridge.post_share("acme", {"share_token": shares[5], "customer": "c5"})
    until(bridge, lambda s: value(s, "bridge_upstream_429_total") >= 1)
    control.clear_faults()
    bridge.wait_for([throttled.json()["id"]])
    settled = until(bridge, lambda s: value(s, IMPORTS, {"outcome": "imported", "reason": ""}) == 5)
    retries = value(settled, IMPORTS, {"outcome": "retry", "reason": "rate_limited"})
    assert retries >= 1
    assert value(settled, "bridge_upstream_429_total") == retries
    assert value(settled, "bridge_import_latency_seconds_count") == 5 + retries
    assert value(settled, "bridge_queue_depth") == 0

    # The operator re-enables it: both waiting deliveries go out.
    sink.status = 200
    assert bridge.admin("POST", "/destinations/crm/enable").status_code == 200
    final = until(
        bridge, lambda s: value(s, DELIVERIES, {"destination": "crm", "result": "delivered"}) == 5
    )
    assert value(final, "bridge_disabled_destinations") == 0
    assert value(final, "bridge_token_erasures_total") == 5
    assert value(final, RECEIVED, {"partner": "acme", "result": "accepted"}) == 5


@pytest.mark.e2e
def test_an_ambiguous_import_is_reconciled_and_counted(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """An import whose answer was lost is reconciled (found imported), and counted as such."""
    bridge = make_bridge()
    control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["504"])
    [share] = tokens(control, target, 1)
    accepted = bridge.post_share("acme", {"share_token": share, "customer": "c1"})
    assert bridge.wait_for([accepted.json()["id"]]) == {accepted.json()["id"]: "imported"}
    samples = until(bridge, lambda s: value(s, IMPORTS, {"outcome": "imported", "reason": ""}) == 1)
    assert value(samples, "bridge_reconciliations_total", {"result": "imported"}) == 1
    assert value(samples, IMPORTS, {"outcome": "retry", "reason": "upstream_unavailable"}) == 1
    assert len(control.redemptions()) == 1
