"""Ambiguous failures: the import is committed, the client never sees its 201."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from bridge.sandbox import FaultSpec, build_starter_world, create_app
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.gate import ConnectionDropped
from tests.sandbox.helpers import finished_session, import_body, workflow_id
from tests.support.waiting import wait_until

IMPORT = "/v3/session/import-shared/"


def _setup(control: SandboxControl, ours: dict[str, Any], acme: dict[str, Any]) -> dict[str, Any]:
    source = finished_session(control, acme, kind="user", status="Approved")
    token = control.mint_token(source["session_id"], ours["application_id"])
    return import_body(token, workflow_id(ours, "KYC"), vendor_data="ambiguous-1")


def _last_call(control: SandboxControl) -> dict[str, Any]:
    """The import's ledger entry; it is written once the server is done with the connection."""
    calls = wait_until(
        lambda: [call for call in control.calls() if call["endpoint"] == "import"],
        "the import in the call ledger",
    )
    return calls[-1]


def _assert_redeemed_but_unseen(
    control: SandboxControl, didit: httpx.Client, ours: dict[str, Any], body: dict[str, Any]
) -> None:
    [redemption] = control.redemptions()
    assert redemption["receiving_application_id"] == ours["application_id"]
    listed = didit.get(
        "/v3/sessions/",
        params={"vendor_data": "ambiguous-1", "workflow_id": body["workflow_id"]},
        headers={"x-api-key": ours["api_key"]},
    ).json()
    assert [row["session_id"] for row in listed["results"]] == [redemption["new_session_id"]]
    retry = didit.post(IMPORT, json=body, headers={"x-api-key": ours["api_key"]})
    assert retry.status_code == 403
    assert control.double_redemptions() == []


class TestAmbiguous:
    def test_a_504_after_the_work(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The client sees a gateway's 504; the ledger shows the redemption."""
        body = _setup(control, ours, acme)
        control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["504"])

        response = didit.post(IMPORT, json=body, headers={"x-api-key": ours["api_key"]})

        assert response.status_code == 504
        call = _last_call(control)
        assert (call["status"], call["handler_status"], call["fault"]) == (
            504,
            201,
            "ambiguous_504",
        )
        control.clear_faults()
        _assert_redeemed_but_unseen(control, didit, ours, body)

    def test_a_dropped_connection_after_the_work(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The connection closes without a byte of answer."""
        body = _setup(control, ours, acme)
        control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["drop"])

        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            didit.post(IMPORT, json=body, headers={"x-api-key": ours["api_key"]})

        call = _last_call(control)
        assert (call["status"], call["handler_status"], call["fault"]) == (
            None,
            201,
            "ambiguous_drop",
        )
        control.clear_faults()
        _assert_redeemed_but_unseen(control, didit, ours, body)

    def test_an_answer_slower_than_the_client_waits(
        self,
        sandbox: Any,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """The client times out; the server, holding the answer back, sees it leave."""
        body = _setup(control, ours, acme)
        control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["slow"], slow_delay_s=5)

        with (
            httpx.Client(base_url=sandbox.base_url, timeout=0.3) as impatient,
            pytest.raises(httpx.ReadTimeout),
        ):
            impatient.post(IMPORT, json=body, headers={"x-api-key": ours["api_key"]})

        call = _last_call(control)
        assert (call["status"], call["handler_status"], call["fault"]) == (
            None,
            201,
            "ambiguous_slow",
        )
        assert call["latency_ms"] < 5000
        control.clear_faults()
        _assert_redeemed_but_unseen(control, didit, ours, body)

    def test_a_patient_client_gets_the_slow_answer(
        self,
        didit: httpx.Client,
        control: SandboxControl,
        ours: dict[str, Any],
        acme: dict[str, Any],
    ) -> None:
        """Held back, not lost: a client that waits long enough gets its 201."""
        body = _setup(control, ours, acme)
        control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["slow"], slow_delay_s=0.2)

        response = didit.post(IMPORT, json=body, headers={"x-api-key": ours["api_key"]})

        assert response.status_code == 201
        call = _last_call(control)
        assert (call["status"], call["fault"]) == (201, "ambiguous_slow")
        assert call["latency_ms"] >= 200

    def test_without_uvicorn_a_drop_fails_the_request(self) -> None:
        """Served by something without a transport to abort, the call still fails, no answer."""
        world = build_starter_world(2)
        app = create_app(world, seed=2)
        ours = world.application_named("ours")
        app.sandbox.faults.set("list", FaultSpec(ambiguous_rate=1.0, ambiguous_modes=("drop",)))

        async def call() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
                await client.get("/v3/sessions/", headers={"x-api-key": ours.api_key})

        with pytest.raises(ConnectionDropped):
            asyncio.run(call())
        assert app.sandbox.ledger.calls_total == 0
