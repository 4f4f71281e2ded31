"""The ledgers, and the report that proves no token was redeemed twice."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from bridge.sandbox.control import SandboxControl
from bridge.sandbox.ledger import Ledger, Redemption
from tests.sandbox.helpers import import_body, workflow_id
from tests.support.sandbox import RunningSandbox


def _redemption(seq: int, source: str, receiver: str) -> Redemption:
    return Redemption(
        seq=seq,
        at=0.0,
        source_session_id=source,
        source_application_id="partner",
        receiving_application_id=receiver,
        new_session_id=f"new-{seq}",
        session_kind="user",
        workflow_id="w",
        vendor_data=None,
        trust_review=False,
        status="In Review",
    )


class TestDoubleRedemptions:
    def test_the_report_finds_a_pair_redeemed_twice(self) -> None:
        """Same source and receiver twice is reported; other receivers are not."""
        ledger = Ledger()
        for seq, (source, receiver) in enumerate(
            [("s1", "us"), ("s1", "them"), ("s2", "us"), ("s1", "us")], start=1
        ):
            ledger.add_redemption(_redemption(seq, source, receiver))

        assert ledger.double_redemptions() == [
            {
                "source_session_id": "s1",
                "receiving_application_id": "us",
                "count": 2,
                "new_session_ids": ["new-1", "new-4"],
            }
        ]

    def test_over_http_it_is_empty_until_the_check_is_bypassed(
        self,
        sandbox: RunningSandbox,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """Real imports leave it empty; a forged second entry (as if the 403 check failed)
        shows up."""
        sources = [control.create_session(acme["application_id"]) for _ in range(3)]
        for source in sources:
            token = control.mint_token(source["session_id"], ours["application_id"])
            for _ in range(2):
                didit.post(
                    "/v3/session/import-shared/",
                    json=import_body(token, workflow_id(ours, "KYC")),
                    headers={"x-api-key": ours["api_key"]},
                )
        assert len(control.redemptions()) == 3
        assert control.double_redemptions() == []

        ledger = sandbox.state.ledger
        ledger.add_redemption(dataclasses.replace(ledger.redemptions[0], seq=4, new_session_id="x"))

        [double] = control.double_redemptions()
        assert double["source_session_id"] == sources[0]["session_id"]
        assert double["receiving_application_id"] == ours["application_id"]
        assert double["count"] == 2


class TestCallLedger:
    def test_every_call_is_recorded(
        self, didit: httpx.Client, control: SandboxControl, ours: dict[str, Any]
    ) -> None:
        """Method, path, endpoint, application, status, latency and fault, in order."""
        didit.get("/v3/sessions/", headers={"x-api-key": ours["api_key"]})
        didit.post("/v3/session/import-shared/", json={}, headers={"x-api-key": "sbx_nope"})

        first, second = control.calls()

        assert (first["method"], first["path"], first["endpoint"]) == (
            "GET",
            "/v3/sessions/",
            "list",
        )
        assert (first["application_id"], first["status"]) == (ours["application_id"], 200)
        assert first["latency_ms"] > 0
        assert first["fault"] is None
        assert (second["endpoint"], second["status"], second["application_id"]) == (
            "import",
            401,
            None,
        )
        assert second["handler_status"] is None
        assert [call["seq"] for call in control.calls(since=first["seq"])] == [second["seq"]]
