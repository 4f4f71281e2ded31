"""``bridge serve`` killed with SIGKILL while deliveries are in flight loses none of them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.sandbox.control import SandboxControl
from bridge.store import DeliveryStatus
from tests.delivery.helpers import SECRET
from tests.delivery.sink import Answer, running_sink
from tests.support.bridge_process import BridgeProcess, SandboxTarget, default_rules
from tests.support.read_only import read_rows
from tests.support.sandbox import start_sandbox_process
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NOTIFICATIONS = 12


@pytest.fixture(scope="module", name="control")
def _control() -> Iterator[SandboxControl]:
    with start_sandbox_process(seed=5) as (base_url, _process), SandboxControl(base_url) as control:
        yield control


@dataclass(frozen=True)
class Stored:
    id: str
    event_id: str
    status: DeliveryStatus
    body: bytes


def deliveries(db_path: Path) -> list[Stored]:
    """Every delivery in the bridge's SQLite file, read without opening its store."""
    rows = read_rows(
        db_path,
        "SELECT d.id, d.event_id, d.status, e.body FROM deliveries d JOIN events e"
        " ON e.id = d.event_id",
    )
    return [
        Stored(id, event_id, DeliveryStatus(status), bytes(body))
        for id, event_id, status, body in rows
    ]


def test_sigkill_during_delivery_resends_every_unacknowledged_one(
    control: SandboxControl, tmp_path: Path
) -> None:
    """Kill -9 with deliveries in flight and queued; after a restart each delivery not
    acknowledged before the kill is sent again, and every event reaches the sink."""
    target = SandboxTarget.from_control(control)
    partner = control.application("acme")
    tokens = control.bulk_tokens(partner["application_id"], target.application_id, NOTIFICATIONS)
    rules = [
        dict(rule, then={**rule["then"], "destinations": ["crm"]}) for rule in default_rules(target)
    ]
    with running_sink([SECRET]) as sink:
        sink.respond_with(lambda _r, _i: Answer(200, hang_s=1.0))
        destinations = {
            "crm": {
                "url": sink.url,
                "secrets": [SECRET],
                "timeout_s": 2,
                "retry_schedule": ["200ms", "400ms"],
                "max_in_flight": 2,
            }
        }
        with BridgeProcess(
            tmp_path, target, rules=rules, destinations=destinations, rate_limit_per_minute=6000
        ) as bridge:
            ids = [
                bridge.post_share("acme", {"share_token": token, "customer": f"c{i}"}).json()["id"]
                for i, token in enumerate(tokens)
            ]
            assert set(bridge.wait_for(ids).values()) == {"imported"}
            wait_until(lambda: sink.count() >= 3, "three deliveries at the sink")
            assert bridge.kill() == -9
            killed_at = time.monotonic()
            before = {d.id: d for d in deliveries(bridge.db_path)}
            acknowledged = {
                d.event_id for d in before.values() if d.status is DeliveryStatus.DELIVERED
            }
            unacknowledged = {d.event_id for d in before.values()} - acknowledged
            assert len(before) == NOTIFICATIONS
            assert acknowledged, "some deliveries should have completed before the kill"
            assert len(unacknowledged) >= 2, "some should have been in flight or queued"

            sink.respond_with(lambda _r, _i: Answer(200))
            bridge.start()
            wait_until(
                lambda: all(
                    d.status is DeliveryStatus.DELIVERED for d in deliveries(bridge.db_path)
                ),
                "every delivery delivered",
            )
        received = sink.snapshot()
    resent = {r.webhook_id for r in received if r.at > killed_at}
    assert unacknowledged <= resent
    assert not acknowledged & resent, "an acknowledged delivery was sent again"
    assert {r.webhook_id for r in received} == acknowledged | unacknowledged
    assert all(r.verified == (True,) for r in received)
    by_event = {d.event_id: d.body for d in before.values()}
    assert all(r.body == by_event[r.webhook_id] for r in received)
