"""Outcomes end to end: ``bridge serve`` and ``bridge sandbox`` as real processes on 127.0.0.1.

Every import outcome and reason (docs/architecture.md, "Imports and outcomes") is produced by a
sandbox scenario and compared with the sandbox's redemption ledger; the operator CLI
(``notifications list|show``, ``retry``) runs as a real process; no share token ever reaches the
logs, the CLI or the events.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import jwt
import orjson
import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import BridgeProcess, SandboxTarget, default_rules
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NOWHERE_WORKFLOW = "0b0b0b0b-0000-4000-8000-00000000dead"


def partner_app(control: SandboxControl, name: str = "acme") -> str:
    app_id: str = control.application(name)["application_id"]
    return app_id


def fresh_token(
    control: SandboxControl, target: SandboxTarget, kind: str = "user", **options: Any
) -> str:
    """A token for a new finished session of acme's, for our application."""
    [token] = control.bulk_tokens(
        partner_app(control), target.application_id, 1, session_kind=kind, **options
    )
    return token


def source_session(token: str) -> str:
    session: str = jwt.decode(token, options={"verify_signature": False})["session_id"]
    return session


def accepted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    notification_id: str = response.json()["id"]
    return notification_id


def show(bridge: BridgeProcess, notification_id: str) -> dict[str, Any]:
    """The notification's timeline as the admin API shows it."""
    timeline = bridge.shown(notification_id)
    assert timeline is not None
    return timeline


def assert_reason(
    bridge: BridgeProcess, notification_id: str, status: str, code: str, http_status: int
) -> None:
    n = show(bridge, notification_id)["notification"]
    assert (n["status"], n["reason"] and n["reason"]["code"]) == (status, code)
    assert n["reason"]["http_status"] == http_status
    assert n["session"] is None


def assert_no_token_leaks(bridge: BridgeProcess, tokens: list[str]) -> None:
    """Neither a token nor its claims segment in the process's output, the CLI's list, the
    timelines an operator reads (the admin API's, the CLI's ``--json`` form) or the events."""
    texts = [bridge.output(), bridge.cli("notifications", "list").stdout]
    for n in bridge.listed():
        texts.append(orjson.dumps(show(bridge, n["id"])).decode())
        texts += [body.decode() for body in bridge.event_bodies(n["id"])]
    for token in tokens:
        for text in texts:
            assert token not in text
            assert token.split(".")[1] not in text


def session_status(bridge: BridgeProcess, notification_id: str) -> str:
    status: str = show(bridge, notification_id)["notification"]["session"]["status"]
    return status


class TestImported:
    def test_kyc_and_kyb_are_imported_with_the_session_in_the_ledger(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        kyc, kyb = fresh_token(control, target), fresh_token(control, target, "business")
        kyc_id = accepted(bridge.post_share("acme", {"share_token": kyc, "customer": "p-1"}))
        kyb_id = accepted(bridge.post_share("globex", {"share_token": kyb, "customer": "co-1"}))

        assert bridge.wait_for([kyc_id, kyb_id]) == {kyc_id: "imported", kyb_id: "imported"}
        ledger = {r["source_session_id"]: r for r in control.redemptions()}
        assert len(ledger) == 2
        for notification_id, token, workflow, vendor_data in (
            (kyc_id, kyc, target.kyc_workflow_id, "acme:p-1"),
            (kyb_id, kyb, target.kyb_workflow_id, "globex:co-1"),
        ):
            n = show(bridge, notification_id)["notification"]
            redemption = ledger[source_session(token)]
            assert n["session"]["session_id"] == redemption["new_session_id"]
            assert n["session"]["status"] == redemption["status"] == "In Review"
            assert (redemption["workflow_id"], redemption["vendor_data"]) == (workflow, vendor_data)
            [event] = bridge.event_bodies(notification_id)
            body = orjson.loads(event)
            assert body["type"] == "share.imported"
            assert body["data"]["session"]["session_id"] == redemption["new_session_id"]
        assert control.double_redemptions() == []
        assert_no_token_leaks(bridge, [kyc, kyb])


class TestRejectedAndFailed:
    def test_each_reason_is_produced_and_recorded(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        rules = [
            {
                "name": "hooli-kyc-only",  # a KYB token into a KYC workflow: Didit's 400
                "when": {"partner": "hooli"},
                "then": {
                    "workflow_id": target.kyc_workflow_id,
                    "vendor_data": "h:{payload.customer}",
                },
            },
            {
                "name": "initech-nowhere",  # a workflow that is not in our application
                "when": {"partner": "initech"},
                "then": {"workflow_id": NOWHERE_WORKFLOW, "vendor_data": "i:{payload.customer}"},
            },
            *default_rules(target),
        ]
        bridge = make_bridge(rules=rules)
        tokens: list[str] = []

        # forged: the claims look fine to intake, but Didit cannot verify the signature
        genuine = fresh_token(control, target)
        claims = jwt.decode(genuine, options={"verify_signature": False})
        forged = jwt.encode(claims, "not-didit-s-key-at-all-32-bytes!", algorithm="HS256")
        # redeemed out of band first (under another vendor_data, so no reconcile mistakes it)
        taken = fresh_token(control, target)
        oob = httpx.post(
            f"{target.base_url}/v3/session/import-shared/",
            json={
                "share_token": taken,
                "workflow_id": target.kyc_workflow_id,
                "vendor_data": "out-of-band",
                "trust_review": False,
            },
            headers={"x-api-key": target.api_key},
        )
        assert oob.status_code == 201
        # the source session deleted after minting
        gone = fresh_token(control, target)
        control.delete_session(source_session(gone))
        business = fresh_token(control, target, "business")
        nowhere = fresh_token(control, target)
        tokens += [genuine, forged, taken, gone, business, nowhere]

        ids = {
            "forged": accepted(bridge.post_share("acme", {"share_token": forged, "customer": "1"})),
            "taken": accepted(bridge.post_share("acme", {"share_token": taken, "customer": "2"})),
            "gone": accepted(bridge.post_share("globex", {"share_token": gone, "customer": "3"})),
            "kind": accepted(
                bridge.post_share("hooli", {"share_token": business, "customer": "4"})
            ),
            "nowhere": accepted(
                bridge.post_share("initech", {"share_token": nowhere, "customer": "5"})
            ),
        }
        bridge.wait_for(ids.values())
        assert_reason(bridge, ids["forged"], "rejected", "token_invalid_or_expired", 401)
        assert_reason(bridge, ids["taken"], "rejected", "already_imported", 403)
        assert_reason(bridge, ids["gone"], "rejected", "source_session_not_found", 404)
        assert_reason(bridge, ids["kind"], "rejected", "bad_request", 400)
        assert_reason(bridge, ids["nowhere"], "failed", "workflow_not_found", 404)
        # a 403 is reconciled before it is judged
        kinds = [a["kind"] for a in show(bridge, ids["taken"])["attempts"]]
        assert kinds == ["import", "reconcile"]

        # no credits: Didit's 403, reconciled, then failed
        control.update_application(target.application_id, credits=0)
        broke = fresh_token(control, target)
        broke_id = accepted(bridge.post_share("acme", {"share_token": broke, "customer": "6"}))
        bridge.wait_for([broke_id])
        assert_reason(bridge, broke_id, "failed", "upstream_forbidden", 403)
        control.update_application(target.application_id, credits=None)

        # 402 Payment Required (a sandbox fault: the emulated import never answers it)
        control.set_faults("import", error_rate=1.0, error_statuses=[402])
        unpaid = fresh_token(control, target)
        unpaid_id = accepted(bridge.post_share("acme", {"share_token": unpaid, "customer": "7"}))
        bridge.wait_for([unpaid_id])
        assert_reason(bridge, unpaid_id, "failed", "insufficient_balance", 402)
        tokens += [broke, unpaid]

        # only the out-of-band import was ever redeemed
        assert [r["vendor_data"] for r in control.redemptions()] == ["out-of-band"]
        events = {
            notification_id: [e["type"] for e in show(bridge, notification_id)["events"]]
            for notification_id in [*ids.values(), broke_id, unpaid_id]
        }
        assert events[ids["forged"]] == ["share.rejected"]
        assert events[ids["nowhere"]] == ["share.failed"]
        assert_no_token_leaks(bridge, tokens)

    def test_a_token_for_another_application_is_rejected_by_didit(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        """Intake only sees the claim; a bridge told the wrong application id lets through a
        token minted for that application, and Didit (our API key) refuses it: 403."""
        globex = partner_app(control, "globex")
        bridge = make_bridge(application_id=globex)
        [token] = control.bulk_tokens(partner_app(control), globex, 1)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "x"})
        )
        bridge.wait_for([notification_id])
        assert_reason(bridge, notification_id, "rejected", "token_not_for_this_application", 403)
        assert control.redemptions() == []

    def test_upstream_auth_then_fixed_key_and_retry(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge(api_key="sbx_wrong_key")
        token = fresh_token(control, target)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "r"})
        )
        bridge.wait_for([notification_id])
        assert_reason(bridge, notification_id, "failed", "upstream_auth", 401)

        bridge.restart(api_key=target.api_key)
        retried = bridge.cli("retry", notification_id)
        assert retried.returncode == 0, retried.stderr
        assert "queued again" in retried.stdout
        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
        [redemption] = control.redemptions()
        assert redemption["source_session_id"] == source_session(token)

        refused = bridge.cli("retry", notification_id)
        assert refused.returncode == 1
        assert "only a failed notification" in refused.stderr
        missing = bridge.cli("retry", "ntf_does_not_exist")
        assert (missing.returncode, "no notification with that id" in missing.stderr) == (1, True)
        assert_no_token_leaks(bridge, [token])


class TestRetriesAndAmbiguity:
    def test_429_and_5xx_are_retried_until_imported(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        control.set_faults("import", throttle_rate=1.0, retry_after_s=1)
        token = fresh_token(control, target)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "t"})
        )
        wait_for_call(control, "throttle_429")
        control.set_faults("import", error_rate=1.0, error_statuses=[502])
        wait_for_call(control, "error_502")
        control.clear_faults()

        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
        statuses = [a["http_status"] for a in show(bridge, notification_id)["attempts"]]
        assert 429 in statuses
        assert 502 in statuses
        assert statuses[-1] in (201, 200)  # the import, or a reconcile that found it
        assert len(control.redemptions()) == 1

    @pytest.mark.parametrize("mode", ["504", "drop", "slow"])
    def test_an_ambiguous_import_is_reconciled_to_imported(
        self,
        make_bridge: MakeBridge,
        control: SandboxControl,
        target: SandboxTarget,
        mode: str,
    ) -> None:
        bridge = make_bridge(timeout_s=1.0)
        control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=[mode], slow_delay_s=3.0)
        token = fresh_token(control, target)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": f"amb-{mode}"})
        )
        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
        [redemption] = control.redemptions()
        assert control.double_redemptions() == []
        timeline = show(bridge, notification_id)
        assert timeline["notification"]["session"]["session_id"] == redemption["new_session_id"]
        imports = [a for a in timeline["attempts"] if a["kind"] == "import"]
        reconciles = [a for a in timeline["attempts"] if a["kind"] == "reconcile"]
        assert len(imports) == 1
        assert imports[0]["result"] == "ambiguous"
        assert imports[0]["http_status"] == (504 if mode == "504" else None)
        assert (reconciles[-1]["http_status"], reconciles[-1]["result"]) == (200, "imported")
        import_calls = [c for c in control.calls() if c["endpoint"] == "import"]
        assert len(import_calls) == 1
        if mode == "504":  # once through the real CLI: the reconciliation in the timeline
            shown = bridge.cli("notifications", "show", notification_id).stdout
            assert "import #1: 504 ambiguous (" in shown
            assert any(
                "  reconcile #" in line and ": 200 imported (" in line
                for line in shown.splitlines()
            )

    def test_a_token_that_expires_while_queued_ends_expired(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        """Imports are throttled (a 429 pauses the lane) until the token's deadline passes."""
        bridge = make_bridge()
        control.set_faults("import", throttle_rate=1.0, retry_after_s=30)
        session = control.create_session(partner_app(control))["session_id"]
        token = control.mint_token(session, target.application_id, expires_in_s=13)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "late"})
        )
        assert bridge.wait_for([notification_id], timeout_s=15) == {notification_id: "expired"}
        n = show(bridge, notification_id)["notification"]
        assert n["reason"]["code"] == "share_token_expired"
        assert control.redemptions() == []
        assert [e["type"] for e in show(bridge, notification_id)["events"]] == ["share.expired"]


def wait_for_call(control: SandboxControl, fault: str, timeout_s: float = 10.0) -> None:
    """Until the sandbox has answered an import with ``fault`` (not a timing assertion)."""

    wait_until(
        lambda: any(c["fault"] == fault for c in control.calls()),
        f"a {fault} call",
        timeout_s=timeout_s,
    )


class TestRouteIsFixedAtIntake:
    def test_a_config_change_does_not_move_accepted_work(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        control.set_faults("import", error_rate=1.0, error_statuses=[503])  # hold it pending
        token = fresh_token(control, target)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "orig"})
        )
        wait_for_call(control, "error_503")
        moved = [
            {
                "name": "everything-elsewhere",
                "then": {"workflow_id": target.kyb_workflow_id, "vendor_data": "new:{event_id}"},
            }
        ]
        bridge.restart(rules=moved)
        control.clear_faults()
        assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
        [redemption] = control.redemptions()
        assert redemption["workflow_id"] == target.kyc_workflow_id
        assert redemption["vendor_data"] == "acme:orig"
        assert show(bridge, notification_id)["notification"]["route"]["rule"] == "kyc"
        # a new notification takes the new rule
        fresh = fresh_token(control, target, "business")
        new_id = accepted(
            bridge.post_share("acme", {"share_token": fresh, "customer": "z", "event_id": "e9"})
        )
        bridge.wait_for([new_id])
        assert show(bridge, new_id)["notification"]["route"]["vendor_data"] == "new:e9"


class TestOperatorCli:
    def test_list_filters_and_show_renders_the_timeline(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        good = fresh_token(control, target)
        claims = jwt.decode(good, options={"verify_signature": False})
        forged = jwt.encode(claims | {"session_id": str(uuid.uuid4())}, "k" * 32)
        ok_id = accepted(bridge.post_share("acme", {"share_token": good, "customer": "a"}))
        bad_id = accepted(bridge.post_share("hooli", {"share_token": forged, "customer": "b"}))
        bridge.wait_for([ok_id, bad_id])

        listed = bridge.cli("notifications", "list")
        assert listed.returncode == 0
        assert ok_id in listed.stdout
        assert bad_id in listed.stdout
        imported = bridge.cli("notifications", "list", "--status", "imported")
        assert (ok_id in imported.stdout, bad_id in imported.stdout) == (True, False)
        hooli = bridge.cli("notifications", "list", "--partner", "hooli", "--json")
        rows = [orjson.loads(line) for line in hooli.stdout.splitlines()]
        assert [(r["id"], r["status"]) for r in rows] == [(bad_id, "rejected")]
        nothing = bridge.cli("notifications", "list", "--status", "failed", "--partner", "acme")
        assert nothing.returncode == 0
        assert nothing.stdout.split() == ["ID", "RECEIVED", "PARTNER", "STATUS", "RULE", "REASON"]
        assert listed.stdout.splitlines()[0] == nothing.stdout.rstrip("\n")  # a header row

        shown = bridge.cli("notifications", "show", ok_id)
        assert shown.returncode == 0
        lines = shown.stdout.splitlines()
        assert lines[0].startswith(f"{ok_id}  imported  partner=acme rule=kyc")
        assert lines[3].endswith("  received")
        assert lines[4].endswith(f"  routed by rule kyc to workflow {target.kyc_workflow_id}")
        assert any("import #1: 201 imported (" in line and " ms)" in line for line in lines)
        session = show(bridge, ok_id)["notification"]["session"]
        assert any(f"imported session {session['session_id']} (In Review)" in ln for ln in lines)
        assert any(" event share.imported evt_" in line for line in lines)
        assert "vendor_data 'acme:a'" in shown.stdout

        rejected = bridge.cli("notifications", "show", bad_id)
        assert "rejected token_invalid_or_expired" in rejected.stdout
        as_json = orjson.loads(bridge.cli("notifications", "show", bad_id, "--json").stdout)
        assert as_json["notification"]["reason"]["http_status"] == 401
        assert [a["kind"] for a in as_json["attempts"]] == ["import"]
        assert as_json["events"][0]["type"] == "share.rejected"
        unknown = bridge.cli("notifications", "show", "ntf_nope")
        assert unknown.returncode == 1
        assert_no_token_leaks(bridge, [good, forged])

    def test_retry_refuses_when_the_token_is_gone(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge(api_key="sbx_wrong_key")
        session = control.create_session(partner_app(control))["session_id"]
        token = control.mint_token(session, target.application_id, expires_in_s=14)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "gone"})
        )
        bridge.wait_for([notification_id])
        assert_reason(bridge, notification_id, "failed", "upstream_auth", 401)
        wait_until_past(show(bridge, notification_id)["notification"]["deadline"])
        refused = bridge.cli("retry", notification_id)
        assert refused.returncode == 1
        assert "token expired or was erased" in refused.stderr
        assert bridge.statuses()[notification_id] == "failed"


def wait_until_past(deadline: str | None) -> None:
    """Until the wall clock is past ``deadline`` (the admin API's RFC 3339 time)."""
    assert deadline is not None
    at = datetime.fromisoformat(deadline).timestamp()
    wait_until(lambda: time.time() > at, "the deadline", timeout_s=at - time.time() + 5)


class TestDiditWebhooks:
    def test_status_updates_sent_by_didit_are_recorded_and_never_downgraded(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge(didit_webhooks=True)
        control.update_application(
            target.application_id, webhook_url=f"{bridge.base_url}/v1/didit/webhooks"
        )
        token = fresh_token(control, target)
        notification_id = accepted(
            bridge.post_share("acme", {"share_token": token, "customer": "wh"})
        )
        bridge.wait_for([notification_id])
        imported = show(bridge, notification_id)["notification"]["session"]["session_id"]

        decided = control.set_status(imported, "Approved")
        assert decided["webhook"]["response_status"] == 200
        assert session_status(bridge, notification_id) == "Approved"
        stale = control.set_status(imported, "In Review")
        assert stale["webhook"]["response_status"] == 200
        assert session_status(bridge, notification_id) == "Approved"
        events = [orjson.loads(body) for body in bridge.event_bodies(notification_id)]
        assert [e["type"] for e in events] == ["share.imported", "share.status_updated"]
        assert events[1]["data"]["session"]["status"] == "Approved"

        # a session of ours that the bridge did not import: answered 200, ignored
        other = control.create_session(target.application_id, status="In Review")
        assert (
            control.set_status(other["session_id"], "Declined")["webhook"]["response_status"] == 200
        )
        # a webhook signed with another secret is refused
        control.update_application(target.application_id, webhook_secret="whsk_not_ours")
        forged = control.set_status(imported, "Declined")
        assert forged["webhook"]["response_status"] == 401
        assert session_status(bridge, notification_id) == "Approved"
        assert_no_token_leaks(bridge, [token])

    def test_without_didit_webhooks_configured_the_endpoint_is_404(
        self, make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
    ) -> None:
        bridge = make_bridge()
        control.update_application(
            target.application_id, webhook_url=f"{bridge.base_url}/v1/didit/webhooks"
        )
        session = control.create_session(target.application_id, status="In Review")
        answer = control.set_status(session["session_id"], "Approved")
        assert answer["webhook"]["response_status"] == 404
