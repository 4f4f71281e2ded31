"""Quota (issue 4): a backlog drains at the quota without a 429, and a 429 pauses every import.

Both tests read the sandbox's call ledger, which records each import call as it arrived.

- Steady state: the sandbox allows Didit's 300 writes in any 60 s and the bridge is paced at
  300 a minute, but someone else has just spent 240 of them with the same API key. The bridge
  drains at the quota's pace, sees ``X-RateLimit-Remaining`` fall under 15 % of the limit
  for reasons its own sends do not explain, and slows down: no 429 while a bridge sending at
  its configured pace would have hit the quota after 12 s.
- An injected 429 with ``Retry-After: 3`` stops every import (not only the throttled one)
  for three seconds, then the drain resumes and completes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

IMPORT_PATH = "/v3/session/import-shared/"


def test_a_backlog_drains_at_the_quota_without_a_429(
    control: SandboxControl, target: SandboxTarget, make_bridge: Callable[..., BridgeProcess]
) -> None:
    limit, spent_elsewhere, backlog, observe_s = 300, 240, 80, 16.0
    control.set_quota(write_limit=limit)  # 60 s window, as Didit's
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, backlog)
    bridge = make_bridge(rate_limit_per_minute=limit, max_in_flight=8)
    # Another client of our API key spends most of the window (bad requests count too).
    with httpx.Client(base_url=target.base_url, headers={"x-api-key": target.api_key}) as http:
        for _ in range(spent_elsewhere):
            assert http.post(IMPORT_PATH, json={}).status_code == 400
    first_seq = control.calls()[-1]["seq"]

    for index, token in enumerate(tokens):
        response = bridge.post_share("acme", {"share_token": token, "customer": f"c{index}"})
        assert response.status_code == 202, response.text
    wait_until(lambda: bool(_imports(control, first_seq)), "the first import")
    started = _imports(control, first_seq)[0]["at"]
    time.sleep(observe_s)  # an observation period, not a timing assertion
    calls = [call for call in _imports(control, first_seq) if call["at"] < started + observe_s]

    statuses = [call["status"] for call in calls]
    assert 429 not in statuses, statuses
    assert set(statuses) == {201}
    # At the quota's pace while it lasts: never faster than the pacer's bucket (one second's
    # worth, then the rate) allows, give or take one call of clock jitter...
    arrivals = [call["at"] for call in calls]
    per_s = limit / 60
    for i, early in enumerate(arrivals):
        for j in range(i, len(arrivals)):
            assert j - i + 1 <= per_s + 1 + (arrivals[j] - early) * per_s, (i, j, arrivals)
    # ...and not much slower until the remaining quota ran low (15 % of the limit)...
    remaining_low_after = limit - spent_elsewhere - int(0.15 * limit)
    assert len(calls) > remaining_low_after
    head = arrivals[: remaining_low_after - 1]
    assert head[-1] - head[0] <= (len(head) - 1) / (0.7 * per_s), head
    # ...then slower, so the window's last writes last until it frees up.
    assert len(calls) < limit - spent_elsewhere
    bridge.kill()  # a graceful stop would wait for the imports held back by the pacer


def test_an_injected_429_pauses_every_import_for_retry_after(
    control: SandboxControl, target: SandboxTarget, make_bridge: Callable[..., BridgeProcess]
) -> None:
    retry_after_s, backlog = 3, 60
    control.set_quota(write_limit=100_000)
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, backlog)
    bridge = make_bridge(rate_limit_per_minute=600, max_in_flight=8)
    ids = []
    for index, token in enumerate(tokens):
        response = bridge.post_share("acme", {"share_token": token, "customer": f"c{index}"})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])

    wait_until(lambda: len(control.redemptions()) >= 10, "the drain to be under way")
    control.set_faults("import", throttle_rate=1.0, retry_after_s=retry_after_s)
    wait_until(lambda: any(c["status"] == 429 for c in _imports(control, 0)), "a 429")
    control.clear_faults("import")

    final = bridge.wait_for(ids, timeout_s=30)
    assert set(final.values()) == {"imported"}
    calls = _imports(control, 0)
    throttled = [call["at"] for call in calls if call["status"] == 429]
    paused_from, paused_until = throttled[0], throttled[-1] + retry_after_s
    tolerance = 0.25  # calls already past the pacer when the first 429 arrived, clock jitter
    during = [
        call
        for call in calls
        if paused_from + tolerance < call["at"] < paused_until - tolerance and call["status"] != 429
    ]
    assert during == [], during
    assert len(throttled) <= 2, throttled  # the pause held back everything queued
    assert any(call["at"] >= paused_until - tolerance for call in calls)  # then it resumed


def _imports(control: SandboxControl, after_seq: int) -> list[dict[str, Any]]:
    return [
        call
        for call in control.calls(since=after_seq)
        if call["endpoint"] == "import" and call["seq"] > after_seq
    ]
