"""One partner cannot block another's share, against ``bridge serve`` and the sandbox: share
tokens' claims are unverified, so any partner can send a token carrying another's claims."""

from __future__ import annotations

import base64
import os

import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import SandboxTarget

pytestmark = pytest.mark.e2e


def forged_copy(token: str) -> str:
    """The same header and claims under a signature Didit never made."""
    header, claims, _signature = token.split(".")
    signature = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return f"{header}.{claims}.{signature}"


def test_a_forged_copy_pending_for_one_partner_does_not_make_anothers_share_a_duplicate(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """globex sends a copy of acme's share with a forged signature; acme's real share arrives
    while globex's import is still in flight: accepted (202), not a duplicate of globex's, and
    imported, while the forgery is rejected by Didit."""
    bridge = make_bridge(timeout_s=5.0)
    control.set_faults("import", latency_ms=1_500)  # each import is in flight for a while
    acme_app = control.application("acme")["application_id"]
    [real] = control.bulk_tokens(acme_app, target.application_id, 1, session_kind="user")

    forged = bridge.post_share("globex", {"share_token": forged_copy(real), "customer": "c1"})
    assert forged.status_code == 202, forged.text
    answer = bridge.post_share("acme", {"share_token": real, "customer": "c1"})
    assert answer.status_code == 202, answer.text
    forged_id, real_id = forged.json()["id"], answer.json()["id"]
    assert real_id != forged_id
    assert bridge.statuses()[forged_id] == "pending"  # when acme's share arrived
    outcomes = bridge.wait_for([forged_id, real_id], timeout_s=30.0)
    assert outcomes == {forged_id: "rejected", real_id: "imported"}

    # a duplicate still answers the same partner's own notification
    again = bridge.post_share("acme", {"share_token": real, "customer": "c1"})
    assert (again.status_code, again.json()) == (200, {"id": real_id, "status": "duplicate"})
