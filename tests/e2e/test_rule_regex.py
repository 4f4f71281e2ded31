"""A rule's regex against what a hostile partner sends, through the real ``bridge serve``: the
value that makes a backtracking engine try 2^n ways must not stall the event loop."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import SandboxTarget, default_rules
from tests.support.read_only import read_rows

pytestmark = pytest.mark.e2e

# A common email pattern; Python's re needs ~10 s for this 25-character value, 4x per extra one.
CATASTROPHIC_EMAIL = r"[a-z0-9]+([._-]?[a-z0-9]+)*@[a-z0-9]+([.-]?[a-z0-9]+)*\.[a-z]{2,}"
CATASTROPHIC_VALUE = "a" * 24 + "!"
HEALTHZ_BUDGET_S = 1.0


def test_a_catastrophic_regex_value_does_not_stall_healthz(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    email_rule = {
        "name": "by-email",
        "when": {"payload": {"email": {"regex": CATASTROPHIC_EMAIL}}},
        "then": {"workflow_id": target.kyc_workflow_id, "vendor_data": "email:{payload.customer}"},
    }
    bridge = make_bridge(rules=[email_rule, *default_rules(target)])
    source = control.application("acme")["application_id"]
    hostile_token, fine_token = control.bulk_tokens(source, target.application_id, 2)
    answers: dict[str, httpx.Response] = {}

    def send() -> None:
        payload = {"share_token": hostile_token, "customer": "c1", "email": CATASTROPHIC_VALUE}
        answers["hostile"] = bridge.post_share("hooli", payload)

    sender = threading.Thread(target=send)
    latencies: list[float] = []
    with httpx.Client(timeout=HEALTHZ_BUDGET_S * 3) as probe:
        sender.start()
        probe_until = time.monotonic() + 2.0  # and at least until the hostile share is answered
        while sender.is_alive() or time.monotonic() < probe_until:
            started = time.monotonic()
            try:
                status = probe.get(f"{bridge.base_url}/healthz").status_code
            except httpx.TimeoutException:
                status = 0
            latencies.append(time.monotonic() - started)
            assert status == 200, f"/healthz did not answer within {HEALTHZ_BUDGET_S * 3} s"
            time.sleep(0.05)
    sender.join(timeout=30)

    assert max(latencies) < HEALTHZ_BUDGET_S, max(latencies)
    assert answers["hostile"].status_code == 202, answers["hostile"].text
    fine = bridge.post_share(
        "hooli", {"share_token": fine_token, "customer": "c2", "email": "a.b-c@example.com"}
    )
    assert fine.status_code == 202, fine.text
    routed = dict(read_rows(bridge.db_path, "SELECT id, vendor_data FROM notifications"))
    # the hostile value matched nothing and fell through to the catch-all; a real email matched
    assert routed == {answers["hostile"].json()["id"]: "hooli:c1", fine.json()["id"]: "email:c2"}
