"""The 402 fault: Didit's "Insufficient balance" (reference: the MCP server's payment_required),
which the emulated import cannot reach by itself, injected before the work like a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl, SandboxControlError


def test_a_402_is_answered_before_the_work(
    didit: httpx.Client, control: SandboxControl, ours: dict[str, Any], acme: dict[str, Any]
) -> None:
    control.set_faults("import", error_rate=1.0, error_statuses=[402])
    [token] = control.bulk_tokens(acme["application_id"], ours["application_id"], 1)
    kyc = next(w["workflow_id"] for w in ours["workflows"] if w["kind"] == "KYC")
    response = didit.post(
        "/v3/session/import-shared/",
        json={"share_token": token, "workflow_id": kyc, "trust_review": False},
        headers={"x-api-key": ours["api_key"]},
    )
    assert response.status_code == 402
    assert response.json() == {"code": "payment_required", "message": "Insufficient balance"}
    assert control.redemptions() == []
    [call] = control.calls()
    assert call["fault"] == "error_402"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 499, 600])
def test_other_non_5xx_statuses_stay_refused(control: SandboxControl, status: int) -> None:
    with pytest.raises(SandboxControlError) as refused:
        control.set_faults("import", error_rate=1.0, error_statuses=[status])
    assert refused.value.status == 422
