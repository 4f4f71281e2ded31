"""Three ``bridge serve`` replicas on one PostgreSQL database hold a destination's
``max_in_flight`` and ``rate_limit_per_second`` together, as one bridge would.

A backlog of 20 shares, posted round the replicas, is imported and delivered to one sink
destination with ``max_in_flight: 2`` and ``rate_limit_per_second: 5``. The sink holds each of
the first 10 requests for 0.5 s (two at a time then give 4 a second: the cap binds, where the
rate alone would let a third in) and answers the rest at once (the rate binds, where two slots
alone would let hundreds a second through). The sink never holds more than 2 requests at once,
no second at the sink holds more than 5 arrivals (plus the one that latency can move in, below),
and every delivery arrives once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from bridge.sandbox.control import SandboxControl
from tests.delivery.sink import Answer, Received, running_sink
from tests.support.bridge_process import BridgeProcess, SandboxTarget, default_rules
from tests.support.waiting import wait_until
from tests.support.windows import most_in_any_window

pytestmark = pytest.mark.e2e

SINK_SECRET = "whsec_cmVwbGljYS1kZXN0aW5hdGlvbi1saW1pdHMtc2lu"
SHARES = 20
SLOW = 10  # the first requests, held HOLD_S each
HOLD_S = 0.5
MAX_IN_FLIGHT = 2
RATE = 5


def hold_the_first(received: Received, index: int) -> Answer:
    return Answer(200, hang_s=HOLD_S if index < SLOW else 0.0)


def test_three_replicas_hold_a_destinations_limits_together(
    control: SandboxControl,
    target: SandboxTarget,
    make_bridge: Callable[..., BridgeProcess],
    pg_store: dict[str, object],
) -> None:
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, SHARES)
    rules = [{**r, "then": {**r["then"], "destinations": ["app"]}} for r in default_rules(target)]
    with running_sink([SINK_SECRET], hold_the_first) as sink:
        app = {
            "url": sink.url,
            "secrets": [SINK_SECRET],
            "max_in_flight": MAX_IN_FLIGHT,
            "rate_limit_per_second": RATE,
            "timeout_s": 5,
        }
        options = {"store": pg_store, "rate_limit_per_minute": 6000, "max_in_flight": 4}
        replicas = [
            make_bridge(rules=rules, destinations={"app": app}, start=False, **options)
            for _ in range(3)
        ]
        with ThreadPoolExecutor() as pool:  # started side by side: quicker
            list(pool.map(BridgeProcess.start, replicas))
        accepted = []
        for index, token in enumerate(tokens):
            body = {"share_token": token, "customer": f"c{index}"}
            response = replicas[index % 3].post_share("acme", body)
            assert response.status_code == 202, response.text
            accepted.append(response.json()["id"])

        replicas[0].wait_for(accepted)
        wait_until(lambda: sink.count() >= SHARES, "every delivery at the sink")
        received = sink.snapshot()
        most_open = sink.most_open()

    event_ids = set()
    for notification_id in accepted:
        timeline = replicas[1].shown(notification_id)
        assert timeline is not None
        assert [d["status"] for d in timeline["deliveries"]] == ["delivered"]
        event_ids |= {d["event"]["id"] for d in timeline["deliveries"]}
    assert sorted(r.webhook_id for r in received) == sorted(event_ids)
    assert all(all(r.verified) for r in received)
    # The sink holds a request from its arrival to its answer, inside the bridge's lease on
    # its job (claimed before the POST, finished after the answer): exact, no tolerance.
    assert most_open == MAX_IN_FLIGHT
    # Sends are counted on the database's clock, 1/RATE s apart, each a moment before it
    # arrives; that moment varies, so an arrival may come up to that much early into a second
    # of the sink's: one more arrival in a second at most while it varies less than 1/RATE.
    arrivals = [r.at for r in received]
    assert most_in_any_window(arrivals, 1.0) <= RATE + 1, sorted(arrivals)
    delivered_by = [
        sum(1 for line in replica.log_lines() if line.get("event") == "delivered")
        for replica in replicas
    ]
    assert sum(delivered_by) == SHARES, delivered_by
