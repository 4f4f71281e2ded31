"""Live reload (SIGHUP and ``POST /admin/v1/reload``) with work in flight: a valid config takes
effect for new notifications, an invalid one is refused while the old one keeps serving, and
every notification accepted before, during and after reaches its outcome with its own route."""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import tokens
from tests.support.bridge_process import PARTNERS, BridgeProcess, SandboxTarget, default_rules
from tests.support.fixtures import MakeBridge
from tests.support.waiting import wait_until

UMBRELLA = {"scheme": "api-key", "header": "X-Api-Key", "keys": ["umbrella-test-api-key-1"]}


def umbrella_rule(target: SandboxTarget) -> dict[str, Any]:
    return {
        "name": "umbrella-rule",
        "when": {"partner": "umbrella"},
        "then": {
            "workflow_id": target.kyc_workflow_id,
            "vendor_data": "umbrella:{payload.customer}",
        },
    }


def with_umbrella(bridge: BridgeProcess, target: SandboxTarget) -> None:
    """Rewrite the config file with a new partner and a rule for it first."""
    partners = {
        **{name: {"auth": dict(block)} for name, block in PARTNERS.items()},
        "umbrella": {"auth": UMBRELLA},
    }
    bridge.write_config(
        rules=[umbrella_rule(target), *default_rules(target)], extra={"partners": partners}
    )


def post_umbrella(bridge: BridgeProcess, token: str, customer: str) -> httpx.Response:
    return bridge.http.post(
        f"{bridge.base_url}/v1/partners/umbrella/shares",
        json={"share_token": token, "customer": customer},
        headers={"X-Api-Key": "umbrella-test-api-key-1"},
    )


def until_accepted(bridge: BridgeProcess, token: str, customer: str) -> httpx.Response:
    """Post until the partner the reload added is known (404 until then)."""
    return wait_until(
        lambda: post_umbrella(bridge, token, customer),
        "the reloaded partner",
        holds=lambda answer: answer.status_code != 404,
        timeout_s=10,
    )


def log_events(bridge: BridgeProcess, event: str) -> list[dict[str, Any]]:
    return [line for line in bridge.log_lines() if line.get("event") == event]


def wait_for_log(bridge: BridgeProcess, event: str, count: int) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        lines = log_events(bridge, event)
        return lines if len(lines) >= count else []

    return wait_until(found, f"{count} {event} line(s)", timeout_s=10)


@pytest.mark.e2e
def test_sighup_and_admin_reload_with_work_in_flight(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """SIGHUP applies a valid config and refuses an invalid one; so does the admin endpoint."""
    bridge = make_bridge(max_in_flight=2)
    control.set_faults("import", latency_ms=150)  # imports stay in flight across the reloads
    shares = iter(tokens(control, target, 12))
    accepted: list[str] = []

    def post_acme(customer: str) -> None:
        answer = bridge.post_share("acme", {"share_token": next(shares), "customer": customer})
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["id"])

    for i in range(4):
        post_acme(f"before-{i}")
    assert post_umbrella(bridge, next(shares), "u0").json()["error"]["code"] == "unknown_partner"

    # A valid config by SIGHUP: the new partner and its rule serve new notifications.
    with_umbrella(bridge, target)
    in_flight = bridge.admin("GET", "/notifications", params={"status": "pending"}).json()
    assert in_flight["items"], "the reload should happen with imports still to do"
    assert bridge.process is not None
    bridge.process.send_signal(signal.SIGHUP)
    first = until_accepted(bridge, next(shares), "u1")
    assert first.status_code == 202, first.text
    accepted.append(first.json()["id"])
    post_acme("during")
    assert wait_for_log(bridge, "config_reloaded", 1)[0]["needs_restart"] == []

    # An invalid config by SIGHUP: refused, logged with its issues, the running one kept.
    good = bridge.config_path.read_text()
    bridge.config_path.write_text(good.replace("umbrella-rule", "kyc"))  # duplicate rule names
    bridge.process.send_signal(signal.SIGHUP)
    refused = wait_for_log(bridge, "config_reload_refused", 1)[0]
    assert any("rules" in issue for issue in refused["issues"]), refused
    second = post_umbrella(bridge, next(shares), "u2")
    assert second.status_code == 202, second.text
    accepted.append(second.json()["id"])

    # The same through the admin API: 400 with the issues, then a valid one applied.
    answer = bridge.admin("POST", "/reload")
    assert answer.status_code == 400
    issues = answer.json()["error"]["issues"]
    assert issues
    assert all(issue["file"] == str(bridge.config_path) for issue in issues)
    third = post_umbrella(bridge, next(shares), "u3")
    assert third.status_code == 202
    accepted.append(third.json()["id"])
    bridge.config_path.write_text(good)
    bridge.write_config(rules=default_rules(target), extra={})  # umbrella gone again
    assert bridge.admin("POST", "/reload").json() == {"status": "reloaded"}
    gone = post_umbrella(bridge, next(shares), "u4")
    assert gone.json()["error"]["code"] == "unknown_partner"
    post_acme("after")

    # Nothing accepted is lost, and each kept the route it was accepted with.
    control.clear_faults()
    outcomes = bridge.wait_for(accepted, timeout_s=30)
    assert len(outcomes) == 9  # 6 from acme, 3 from umbrella
    assert set(outcomes.values()) == {"imported"}
    by_id = {n["id"]: n for n in bridge.listed()}
    assert set(by_id) == set(accepted)
    for notification_id in accepted:
        rule = by_id[notification_id]["route"]["rule"]
        assert rule == (
            "umbrella-rule" if by_id[notification_id]["partner"] == "umbrella" else "kyc"
        )
    assert len(control.redemptions()) == len(by_id)
    assert bridge.running
