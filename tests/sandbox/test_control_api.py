"""The control API: shaping the world and resetting it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl, SandboxControlError


class TestWorld:
    def test_the_ready_world(self, control: SandboxControl) -> None:
        """Ours with KYC and KYB workflows, and three partners with sessions of both kinds."""
        world = control.world()

        names = [application["name"] for application in world["applications"]]
        assert names == ["ours", "acme", "globex", "initech"]
        kinds = {w["kind"] for w in control.application("ours")["workflows"]}
        assert kinds == {"KYC", "KYB"}
        for name in names[1:]:
            sessions = control.sessions(control.application(name)["application_id"])
            finished = {
                (s["session_kind"], s["status"])
                for s in sessions
                if s["status"] in ("Approved", "Declined", "In Review")
            }
            assert {kind for kind, _ in finished} == {"user", "business"}
            assert {status for _, status in finished} == {"Approved", "Declined", "In Review"}

    def test_applications_workflows_and_sessions_can_be_added(
        self, control: SandboxControl
    ) -> None:
        """A new application gets an id, a key, workflows; sessions are created in it."""
        created = control.create_application("hooli", workflow_kinds=("KYB",), credits=5)
        extra = control.call(
            "POST",
            f"/applications/{created['application_id']}/workflows",
            {"kind": "KYC", "label": "second"},
        )
        session = control.create_session(created["application_id"], kind="business")

        assert created["api_key"].startswith("sbx_")
        assert created["credits"] == 5
        assert extra["label"] == "second"
        assert session["session_kind"] == "business"
        assert session["workflow_id"] == created["workflows"][0]["workflow_id"]
        assert session["status"] == "Approved"
        assert control.call("GET", f"/applications/{created['application_id']}")["name"] == "hooli"

    def test_an_application_can_be_changed(self, control: SandboxControl) -> None:
        """Credits and the webhook can be set and unset."""
        ours = control.application("ours")

        changed = control.update_application(
            ours["application_id"], credits=0, webhook_url="http://127.0.0.1:1/x"
        )
        unset = control.update_application(ours["application_id"], credits=None, webhook_url=None)

        assert (changed["credits"], changed["webhook_url"]) == (0, "http://127.0.0.1:1/x")
        assert (unset["credits"], unset["webhook_url"]) == (None, None)

    @pytest.mark.parametrize(
        ("method", "path", "body", "status"),
        [
            ("POST", "/applications", {"name": "ours"}, 409),
            ("POST", "/applications", {"name": ""}, 422),
            ("GET", "/applications/nope", None, 404),
            ("PATCH", "/applications/nope", {}, 404),
            ("POST", "/applications/nope/workflows", {"kind": "KYC"}, 404),
            ("POST", "/sessions", {"application_id": "nope"}, 404),
            ("GET", "/sessions/nope", None, 404),
            ("DELETE", "/sessions/nope", None, 404),
            ("POST", "/sessions/nope/status", {"status": "Approved"}, 404),
            ("POST", "/tokens", {"session_id": "nope", "for_application_id": "x"}, 404),
            ("GET", "/ledger/calls?since=x", None, 400),
            ("GET", "/faults/import/schedule?count=0", None, 400),
            ("GET", "/faults/import/schedule?count=x", None, 400),
        ],
    )
    def test_bad_requests_are_refused(
        self,
        control: SandboxControl,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        status: int,
    ) -> None:
        """Unknown ids, taken names and invalid bodies get 4xx, never a 500."""
        with pytest.raises(SandboxControlError) as refused:
            control.call(method, path, body)
        assert refused.value.status == status

    def test_a_session_needs_a_workflow_of_its_kind(self, control: SandboxControl) -> None:
        """A KYB session in an application without a KYB workflow is refused."""
        only_kyc = control.create_application("kyc-only", workflow_kinds=("KYC",))
        acme = control.application("acme")

        with pytest.raises(SandboxControlError) as refused:
            control.create_session(only_kyc["application_id"], kind="business")
        with pytest.raises(SandboxControlError) as foreign:
            control.create_session(
                only_kyc["application_id"], workflow_id=acme["workflows"][0]["workflow_id"]
            )

        assert refused.value.status == 400
        assert foreign.value.status == 404

    def test_reset_restores_the_initial_world(
        self, control: SandboxControl, didit: httpx.Client
    ) -> None:
        """Added applications, deleted sessions and ledgers are undone."""
        acme = control.application("acme")
        before = control.sessions(acme["application_id"])
        control.create_application("temporary")
        control.delete_session(before[0]["session_id"])
        didit.get("/v3/sessions/")

        control.reset()

        assert "temporary" not in [a["name"] for a in control.world()["applications"]]
        assert control.sessions(acme["application_id"]) == before
        assert control.calls() == []


class TestTokens:
    def test_control_minting_follows_the_share_rules(self, control: SandboxControl) -> None:
        """Unfinished sessions cannot be shared through the control API either."""
        acme = control.application("acme")
        ours = control.application("ours")
        unfinished = next(
            s for s in control.sessions(acme["application_id"]) if s["status"] == "In Progress"
        )

        with pytest.raises(SandboxControlError) as refused:
            control.mint_token(unfinished["session_id"], ours["application_id"])

        assert refused.value.status == 400
        assert refused.value.body == [
            "Only finished sessions (Approved, Declined, In Review) can be shared."
        ]

    def test_bulk_tokens_make_fresh_sessions(
        self, control: SandboxControl, didit: httpx.Client
    ) -> None:
        """Each bulk token belongs to its own new session and imports."""
        acme = control.application("acme")
        ours = control.application("ours")
        tokens = control.bulk_tokens(acme["application_id"], ours["application_id"], 3)
        kyc = next(w for w in ours["workflows"] if w["kind"] == "KYC")["workflow_id"]

        statuses = [
            didit.post(
                "/v3/session/import-shared/",
                json={"share_token": t, "workflow_id": kyc, "trust_review": True},
                headers={"x-api-key": ours["api_key"]},
            ).status_code
            for t in tokens
        ]

        assert statuses == [201, 201, 201]
        assert len({r["source_session_id"] for r in control.redemptions()}) == 3

    def test_bulk_tokens_need_two_applications(self, control: SandboxControl) -> None:
        """Sharing with oneself, or from an application without the workflow, is refused."""
        ours = control.application("ours")
        only_kyc = control.create_application("kyc-only", workflow_kinds=("KYC",))

        with pytest.raises(SandboxControlError) as same:
            control.bulk_tokens(ours["application_id"], ours["application_id"], 1)
        with pytest.raises(SandboxControlError) as no_kyb:
            control.bulk_tokens(
                only_kyc["application_id"], ours["application_id"], 1, session_kind="business"
            )

        assert (same.value.status, no_kyb.value.status) == (404, 400)
