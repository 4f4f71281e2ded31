"""One partner cannot starve the others (issue 11, item 4), against ``bridge serve`` and the
sandbox as real processes.

- A flood: acme sends 60 junk tokens (a real token's claims re-signed with a key Didit does
  not have, so each import is answered 401) whose ``exp`` is near, then hooli sends one real
  share. Before, every junk token went to Didit first (their deadlines were earlier) and
  hooli's share waited for all of them; now hooli's share is among the first imports sent
  after it arrived. Acme, whose tokens Didit keeps rejecting, is slowed (far fewer of its junk
  tokens reach Didit than the quota would allow) and raises an alert, on a log line and in
  ``/metrics``.
- A cap: hooli with ``max_imports_per_minute: 5`` sends 12 shares alongside acme's 12; acme's
  are all imported while hooli's stop at five.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from bridge.pipeline.fair_share import ALERT_KIND, SLOWED_AFTER
from bridge.sandbox.control import SandboxControl
from bridge.tokens import read_share_token
from tests.support.bridge_process import BridgeProcess, SandboxTarget

pytestmark = pytest.mark.e2e

RATE_PER_MINUTE = 120  # two imports a second, as in the report
IN_FLIGHT = 8
FLOOD = 60


def forged_tokens(real_token: str, count: int, *, expires_in_s: float) -> list[str]:
    """``count`` tokens that read like ``real_token`` (another source session each, a near
    ``exp``) but are signed with a key Didit does not hold: Didit answers each with 401."""
    claims = dict(read_share_token(real_token).claims)
    forged = []
    for k in range(count):
        claims.update(session_id=f"junk-{k}", exp=int(time.time() + expires_in_s))
        forged.append(jwt.encode(claims, "not-didit-s-signing-key-at-all-32b", algorithm="HS256"))
    return forged


def import_calls(control: SandboxControl) -> list[dict[str, Any]]:
    return [call for call in control.calls() if call["endpoint"] == "import"]


def redemptions_of(control: SandboxControl, partner: str) -> list[dict[str, Any]]:
    return [r for r in control.redemptions() if (r["vendor_data"] or "").startswith(f"{partner}:")]


def test_a_flood_of_junk_tokens_does_not_starve_another_partner(
    control: SandboxControl, target: SandboxTarget, make_bridge: Callable[..., BridgeProcess]
) -> None:
    control.set_quota(write_limit=100_000)
    acme = control.application("acme")["application_id"]
    hooli_token, real = control.bulk_tokens(acme, target.application_id, 2)
    bridge = make_bridge(rate_limit_per_minute=RATE_PER_MINUTE, max_in_flight=IN_FLIGHT)
    # Near, yet every one could be sent in time at the quota: 60 s past the bridge's margin.
    for k, token in enumerate(forged_tokens(real, FLOOD, expires_in_s=90.0)):
        response = bridge.post_share("acme", {"share_token": token, "customer": f"junk{k}"})
        assert response.status_code == 202, response.text
    flood_started = time.time()
    time.sleep(1.0)  # the flood is being sent: the bridge's slots are full of junk

    arrived = time.time()
    response = bridge.post_share("hooli", {"share_token": hooli_token, "customer": "real"})
    assert response.status_code == 202, response.text
    assert bridge.wait_for([response.json()["id"]], timeout_s=30) == {
        response.json()["id"]: "imported"
    }

    (redemption,) = redemptions_of(control, "hooli")
    sent_before = [
        call for call in import_calls(control) if arrived < call["at"] < redemption["at"]
    ]
    # Its turn comes at once: the import already on the wire, at most one more that held the
    # pacer's next send, and the one freeing a slot for it to be claimed. Before: ~50.
    assert len(sent_before) <= 3, [(c["at"] - arrived, c["status"]) for c in sent_before]

    # Acme is slowed for its rejected tokens: an alert, the gauge, and far fewer imports than
    # the 40 its share of the quota would have sent within 20 s.
    observe_until = flood_started + 20.0
    time.sleep(max(0.0, observe_until - time.time()))
    rejected = [c for c in import_calls(control) if c["status"] == 401 and c["at"] < observe_until]
    assert SLOWED_AFTER <= len(rejected) <= SLOWED_AFTER + IN_FLIGHT + 6, len(rejected)
    alerts = [
        line
        for line in bridge.log_lines()
        if line.get("event") == "alert" and line.get("kind") == ALERT_KIND
    ]
    assert [line["partner"] for line in alerts] == ["acme"]
    metrics = bridge.http.get(f"{bridge.base_url}/metrics").text
    assert 'bridge_partner_slowed{partner="acme"} 1.0' in metrics
    assert f'bridge_alerts_total{{kind="{ALERT_KIND}"}} 1.0' in metrics
    assert "hooli" not in {line.get("partner") for line in alerts}
    assert real not in bridge.output()
    bridge.kill()  # a graceful stop would wait for the junk held back by the pacer


def test_a_partner_cap_holds_while_others_go_on(
    control: SandboxControl, target: SandboxTarget, make_bridge: Callable[..., BridgeProcess]
) -> None:
    cap, each = 5, 12
    control.set_quota(write_limit=100_000)
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, 2 * each)
    bridge = make_bridge(
        rate_limit_per_minute=600,
        max_in_flight=IN_FLIGHT,
        partner_options={"hooli": {"max_imports_per_minute": cap}},
    )
    ids: dict[str, list[str]] = {"acme": [], "hooli": []}
    for k in range(each):
        for partner, token in (("hooli", tokens[2 * k]), ("acme", tokens[2 * k + 1])):
            response = bridge.post_share(partner, {"share_token": token, "customer": f"c{k}"})
            assert response.status_code == 202, response.text
            ids[partner].append(response.json()["id"])

    assert set(bridge.wait_for(ids["acme"], timeout_s=30).values()) == {"imported"}
    time.sleep(3.0)  # at 10 imports a second, hooli's backlog would be gone by now
    current = bridge.statuses()
    statuses = [current[i] for i in ids["hooli"]]
    assert statuses.count("imported") == cap, statuses
    assert statuses.count("pending") == each - cap, statuses
    assert len(redemptions_of(control, "hooli")) == cap
    bridge.kill()
