"""History retention against ``bridge serve`` and the sandbox, with a retention of under a second
(``store.retention_days: 0.00001``): imported notifications whose deliveries are done and whose
Didit session is decided disappear from the admin API while new shares keep coming in and being
imported; one whose delivery is still being retried stays, and so does one whose session is
still In Review (Didit's decision webhook must find it); a share sent again after its
notification was deleted is a new notification: Didit refuses it as already imported and the
bridge reconciles (no second redemption)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import SandboxTarget, default_rules
from tests.support.fixtures import sink
from tests.support.recording_sink import RecordingSink
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

__all__ = ["sink"]

RETENTION_DAYS = 0.00001  # 0.864 s


def events_of(sink: RecordingSink) -> dict[str, list[dict[str, Any]]]:
    """The events the sink received, by notification id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for body in sink.bodies:
        event = orjson.loads(body)
        found.setdefault(event["data"]["notification_id"], []).append(event)
    return found


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_old_history_disappears_while_new_work_goes_on(
    make_bridge: MakeBridge,
    control: SandboxControl,
    target: SandboxTarget,
    sink: RecordingSink,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    store: dict[str, Any] = {"url": "sqlite:///bridge.db"}  # replaced below: the bridge's dir
    if backend == "postgres":
        store = request.getfixturevalue("pg_store")
    rules = [{**r, "then": {**r["then"], "destinations": ["app"]}} for r in default_rules(target)]
    # A delivery refused now is retried in an hour: pending all through the test.
    app = sink.destination(retry_schedule=["1h"])
    bridge = make_bridge(rules=rules, destinations={"app": app}, didit_webhooks=True, start=False)
    if backend == "sqlite":
        store = {"url": f"sqlite:///{bridge.db_path}"}
    bridge.write_config(store={**store, "retention_days": RETENTION_DAYS})
    bridge.start()
    control.update_application(
        target.application_id, webhook_url=f"{bridge.base_url}/v1/didit/webhooks"
    )
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, 5)

    def post(token: str, customer: str) -> str:
        response = bridge.post_share("acme", {"share_token": token, "customer": customer})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "accepted"
        return str(response.json()["id"])

    sink.status = 503
    undelivered = post(tokens[0], "undelivered")
    wait_until(lambda: events_of(sink).get(undelivered), "its delivery refused once")
    sink.status = 200

    waves = [[post(token, f"c{n}") for n, token in enumerate(tokens[1:3])]]
    waves.append([post(token, f"d{n}") for n, token in enumerate(tokens[3:5])])
    every = [i for wave in waves for i in wave]

    def listed() -> set[str]:
        return {row["id"] for row in bridge.listed()}

    # Without trust_review every imported session is In Review: kept until Didit decides.
    wait_until(lambda: events_of(sink).keys() >= set(every), "all imported and delivered")
    delivered = events_of(sink)
    assert all(delivered[i][0]["type"] == "share.imported" for i in every)
    *decided, undecided = every
    for notification_id in decided:
        session_id = delivered[notification_id][0]["data"]["session"]["session_id"]
        answer = control.set_status(session_id, "Approved")
        assert answer["webhook"]["response_status"] == 200
    wait_until(listed, "the decided ones deleted", holds=lambda ids: not ids & set(decided))
    for notification_id in decided:
        assert bridge.shown(notification_id) is None
    assert undelivered in listed(), "a delivery still pending keeps its notification"

    # The first wave's shares sent again, their history deleted: each is a new notification.
    # Didit answers 403 (already imported); the bridge lists our sessions before believing it:
    # the same vendor_data finds the session the first import created, another one does not.
    same, other = post(tokens[1], "c0"), post(tokens[2], "someone-else")
    assert not {same, other} & set(every)
    wait_until(lambda: events_of(sink).keys() >= {same, other}, "the shares sent again decided")
    reimported, refused = events_of(sink)[same][0], events_of(sink)[other][0]
    assert reimported["type"] == "share.imported"
    first = delivered[waves[0][0]][0]
    assert reimported["data"]["session"]["session_id"] == first["data"]["session"]["session_id"]
    assert refused["type"] == "share.rejected"
    assert refused["data"]["reason"]["code"] == "already_imported"
    assert len(control.redemptions()) == 5, "no token redeemed twice"
    again = {same, other}

    wait_until(listed, "the shares sent again deleted too", holds=lambda ids: not ids & again)

    metrics = bridge.http.get(f"{bridge.base_url}/metrics").text
    deleted = [
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("bridge_history_deletions_total ")
    ]
    assert deleted == [len(decided) + 2]
    logged = [line for line in bridge.log_lines() if line.get("event") == "history_deleted"]
    assert sum(line["notifications"] for line in logged) == len(decided) + 2
    assert listed() == {undelivered, undecided}, "an undecided session keeps its notification"
