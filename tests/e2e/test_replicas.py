"""Two ``bridge serve`` replicas on one PostgreSQL database behave as one bridge.

60 notifications are sent each to one replica; every fifth is sent again with its message id to
the *other* replica (a partner's retry landing elsewhere), and every seventh again under a new
message id (a second message for the same share). The sandbox loses 10 % of the import answers,
and one replica is SIGKILLed mid-run and restarted. Every share ends imported exactly once
(the sandbox's ledger holds no source session twice), every repeat was answered 200 duplicate
with the original id, and either replica's store lists all of them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from bridge.sandbox.control import SandboxControl
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NOTIFICATIONS = 60


def test_two_replicas_dedupe_and_import_as_one_bridge(
    control: SandboxControl,
    target: SandboxTarget,
    pg_store: dict[str, object],  # before make_bridge: its schema outlives the bridges
    make_bridge: Callable[..., BridgeProcess],
) -> None:
    acme = control.application("acme")
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    control.set_faults("import", latency_ms=20, ambiguous_rate=0.1, ambiguous_modes=["504", "drop"])
    tokens = control.bulk_tokens(acme["application_id"], target.application_id, NOTIFICATIONS)
    options = {"store": pg_store, "rate_limit_per_minute": 6000, "max_in_flight": 4}
    replicas = [make_bridge(**options), make_bridge(**options)]

    accepted: dict[str, int] = {}
    repeats = 0
    for index, token in enumerate(tokens):
        here, there = replicas[index % 2], replicas[(index + 1) % 2]
        body = {"share_token": token, "event_id": f"evt-{index}", "customer": f"c{index}"}
        response = here.post_share("acme", body, message_id=f"m-{index}")
        assert response.status_code == 202, response.text
        notification_id = response.json()["id"]
        accepted[notification_id] = index
        if index % 5 == 0:
            retry = there.post_share("acme", body, message_id=f"m-{index}")
            assert (retry.status_code, retry.json()) == (
                200, {"id": notification_id, "status": "duplicate"},
            )  # fmt: skip
            repeats += 1
        if index % 7 == 0:
            again = there.post_share("acme", body, message_id=f"m-{index}-again")
            assert (again.status_code, again.json()["id"]) == (200, notification_id)
            repeats += 1
        if index == NOTIFICATIONS // 2:
            replicas[1].kill()  # mid-run: its leases are taken over, nothing is lost
            replicas[1].start()
    assert len(accepted) == NOTIFICATIONS
    assert repeats == 12 + 9

    final = replicas[0].wait_for(accepted, timeout_s=60)
    assert Counter(final.values()) == {"imported": NOTIFICATIONS}
    assert control.double_redemptions() == []
    redeemed = Counter(r["source_session_id"] for r in control.redemptions())
    assert len(redeemed) == NOTIFICATIONS
    assert set(redeemed.values()) == {1}
    listed = {n["id"] for n in replicas[1].listed()}  # the admin API of another replica
    assert listed == set(accepted)
    for replica in replicas:
        output = replica.output()
        assert not any(token in output for token in tokens[:20])


def test_three_replicas_share_the_didit_quota(
    control: SandboxControl,
    target: SandboxTarget,
    pg_store: dict[str, object],  # before make_bridge: its schema outlives the bridges
    make_bridge: Callable[..., BridgeProcess],
) -> None:
    """The key allows 20 writes in any 60 s and each replica is configured for 20 a minute:
    three replicas draining one backlog send 20 a minute together (one every 3 s), not each,
    so Didit never answers 429; three replicas pacing alone would hit it after 20 s."""
    limit, observe_s = 20, 24.0
    control.set_quota(write_limit=limit)  # 60 s window, as Didit's
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, 30)
    options = {"store": pg_store, "rate_limit_per_minute": limit, "max_in_flight": 4}
    replicas = [make_bridge(**options) for _ in range(3)]
    first_seq = max((call["seq"] for call in control.calls()), default=0)
    for index, token in enumerate(tokens):
        body = {"share_token": token, "customer": f"c{index}"}
        response = replicas[index % 3].post_share("acme", body)
        assert response.status_code == 202, response.text

    wait_until(lambda: _imports(control, first_seq), "the first import")
    started = _imports(control, first_seq)[0]["at"]
    time.sleep(observe_s)  # an observation period, not a timing assertion
    calls = [call for call in _imports(control, first_seq) if call["at"] < started + observe_s]
    for replica in replicas:
        replica.kill()  # a graceful stop would wait for the imports the pacers hold back

    assert {call["status"] for call in calls} == {201}, calls
    arrivals = sorted(call["at"] for call in calls)
    pace_s = 60 / limit
    for i, early in enumerate(arrivals):  # never faster than the quota's pace, all together
        later = [at for at in arrivals[i:] if at < early + 60]
        assert len(later) <= 1 + (later[-1] - early) / pace_s + 0.5, arrivals
    assert len(calls) >= int(0.9 * observe_s / pace_s), arrivals  # and at no less than 90 %


def _imports(control: SandboxControl, after_seq: int) -> list[dict[str, Any]]:
    return [
        call
        for call in control.calls(since=after_seq)
        if call["endpoint"] == "import" and call["seq"] > after_seq
    ]
