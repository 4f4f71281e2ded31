"""The README's alert table, "what to do" column, done as an operator would: ``share-bridge
serve`` and the sandbox as real processes, the remedies through the real CLI.

Rows covered elsewhere: ``upstream_auth`` (tests/e2e/test_outcomes.py: fixed key, restart,
retry), ``destination_disabled`` (tests/delivery/test_commands.py: ``destinations enable``),
``config_reload_refused`` (tests/ops/test_reload.py), and the timeline's account of a failure
(tests/e2e/test_outcomes.py, ``TestOperatorCli``).
"""

from __future__ import annotations

import signal
from typing import Any

import orjson
import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NOWHERE_WORKFLOW = "0b0b0b0b-0000-4000-8000-00000000dead"


def kyc_rule(workflow_id: str, **then: Any) -> dict[str, Any]:
    return {
        "name": "kyc",
        "then": {"workflow_id": workflow_id, "vendor_data": "{partner}:{payload.customer}", **then},
    }


def fresh_token(control: SandboxControl, target: SandboxTarget) -> str:
    acme = control.application("acme")["application_id"]
    [token] = control.bulk_tokens(acme, target.application_id, 1, session_kind="user")
    return token


def failed_with(bridge: BridgeProcess, token: str, customer: str, code: str) -> str:
    answer = bridge.post_share("acme", {"share_token": token, "customer": customer})
    assert answer.status_code == 202, answer.text
    notification_id: str = answer.json()["id"]
    assert bridge.wait_for([notification_id]) == {notification_id: "failed"}
    timeline = bridge.shown(notification_id)
    assert timeline is not None
    assert timeline["notification"]["reason"]["code"] == code
    return notification_id


def reload(bridge: BridgeProcess) -> None:
    """SIGHUP, then wait for the reload's log line (the README's "reload")."""
    assert bridge.process is not None
    before = _reloads(bridge)
    bridge.process.send_signal(signal.SIGHUP)
    wait_until(lambda: _reloads(bridge) > before, "a config_reloaded line")


def _reloads(bridge: BridgeProcess) -> int:
    return sum(1 for line in bridge.log_lines() if line.get("event") == "config_reloaded")


class TestWorkflowNotFound:
    """ "Fix the rule's workflow_id, reload, retry": the retry runs with the fixed rule."""

    def test_fix_the_rule_reload_and_retry_imports_into_the_fixed_workflow(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge(rules=[kyc_rule(NOWHERE_WORKFLOW)])
        token = fresh_token(control, target)
        notification_id = failed_with(bridge, token, "wf", "workflow_not_found")

        bridge.write_config(rules=[kyc_rule(target.kyc_workflow_id, trust_review=True)])
        reload(bridge)
        retried = bridge.cli("retry", notification_id)
        assert retried.returncode == 0, retried.stderr
        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}

        [redemption] = control.redemptions()
        assert redemption["workflow_id"] == target.kyc_workflow_id
        assert redemption["vendor_data"] == "acme:wf"  # rendered at intake, kept
        timeline = bridge.shown(notification_id)
        assert timeline is not None
        assert timeline["notification"]["route"]["workflow_id"] == target.kyc_workflow_id
        assert timeline["notification"]["route"]["trust_review"] is True
        [change] = timeline["route_changes"]
        assert (change["old"]["workflow_id"], change["new"]["workflow_id"]) == (
            NOWHERE_WORKFLOW,
            target.kyc_workflow_id,
        )
        shown = bridge.cli("notifications", "show", notification_id).stdout
        assert f"routed by rule kyc to workflow {NOWHERE_WORKFLOW}" in shown
        assert (
            f"re-routed by a retry: rule kyc workflow {NOWHERE_WORKFLOW} trust_review=false"
            f" destinations [] -> rule kyc workflow {target.kyc_workflow_id} trust_review=true"
        ) in shown
        as_json = orjson.loads(
            bridge.cli("notifications", "show", notification_id, "--json").stdout
        )
        [listed] = as_json["route_changes"]
        assert listed["old"]["workflow_id"] == NOWHERE_WORKFLOW
        assert listed["new"]["workflow_id"] == target.kyc_workflow_id

    def test_keep_route_retries_with_the_route_it_was_accepted_with(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge(rules=[kyc_rule(NOWHERE_WORKFLOW)])
        notification_id = failed_with(
            bridge, fresh_token(control, target), "k", "workflow_not_found"
        )
        bridge.write_config(rules=[kyc_rule(target.kyc_workflow_id)])
        reload(bridge)
        kept = bridge.cli("retry", notification_id, "--keep-route")
        assert kept.returncode == 0, kept.stderr
        timeline = wait_until(  # the retry runs: a second 404 for the old workflow, failed again
            lambda: bridge.shown(notification_id),
            "a second attempt, failed",
            holds=lambda shown: (
                shown is not None
                and len(shown["attempts"]) >= 2
                and shown["notification"]["status"] == "failed"
            ),
            poll_s=0.1,
        )
        assert timeline is not None
        assert timeline["notification"]["route"]["workflow_id"] == NOWHERE_WORKFLOW
        assert timeline["route_changes"] == []
        assert control.redemptions() == []

    def test_a_rule_gone_from_the_configuration_is_refused_with_why(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge(rules=[kyc_rule(NOWHERE_WORKFLOW)])
        notification_id = failed_with(
            bridge, fresh_token(control, target), "g", "workflow_not_found"
        )
        renamed = kyc_rule(target.kyc_workflow_id) | {"name": "kyc-v2"}
        bridge.write_config(rules=[renamed])
        reload(bridge)
        refused = bridge.cli("retry", notification_id)
        assert refused.returncode == 1
        assert "its rule is no longer in the configuration" in refused.stderr
        assert "--keep-route" in refused.stderr
        assert bridge.statuses()[notification_id] == "failed"


class TestCreditsAndPermissions:
    def test_insufficient_balance_top_up_then_retry(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        control.set_faults("import", error_rate=1.0, error_statuses=[402])
        notification_id = failed_with(
            bridge, fresh_token(control, target), "b", "insufficient_balance"
        )
        control.clear_faults()  # topped up
        assert bridge.cli("retry", notification_id).returncode == 0
        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
        assert len(control.redemptions()) == 1

    def test_upstream_forbidden_fix_in_the_console_then_retry(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        control.update_application(target.application_id, credits=0)
        notification_id = failed_with(
            bridge, fresh_token(control, target), "f", "upstream_forbidden"
        )
        control.update_application(target.application_id, credits=None)
        assert bridge.cli("retry", notification_id).returncode == 0
        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
        assert len(control.redemptions()) == 1
