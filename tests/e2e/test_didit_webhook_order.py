"""Didit status webhooks replayed, out of order and racing, against ``bridge serve``: a decision
on record is never flipped back by an older webhook or a concurrent undecided one, and each
real change emits exactly one ``share.status_updated``, in order."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import orjson
import pytest

from bridge.sandbox.control import SandboxControl
from bridge.signing import sign_didit_webhook
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import BridgeProcess, SandboxTarget

pytestmark = pytest.mark.e2e


def signed_webhook(
    target: SandboxTarget, session_id: str, status: str, *, at: float
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Didit sends for ``status``, signed at ``at``."""
    body = json.dumps(
        {
            "session_id": session_id,
            "status": status,
            "webhook_type": "status.updated",
            "created_at": int(at),
            "timestamp": int(at),
        }
    ).encode()
    headers = sign_didit_webhook(target.webhook_secret, body, timestamp=int(at))
    return body, {"content-type": "application/json", **headers}


def session_of(bridge: BridgeProcess, notification_id: str) -> dict[str, Any]:
    """The notification's Didit session as the admin API shows it."""
    timeline = bridge.shown(notification_id)
    assert timeline is not None
    session: dict[str, Any] = timeline["notification"]["session"]
    return session


def imported_sessions(
    bridge: BridgeProcess, control: SandboxControl, target: SandboxTarget, count: int
) -> dict[str, str]:
    """``count`` shares imported by ``bridge``: notification id -> Didit session id."""
    partner_app = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(partner_app, target.application_id, count, session_kind="user")
    answers = [
        bridge.post_share("acme", {"share_token": token, "customer": f"c{n}"})
        for n, token in enumerate(tokens)
    ]
    assert [answer.status_code for answer in answers] == [202] * count
    ids = [answer.json()["id"] for answer in answers]
    assert set(bridge.wait_for(ids).values()) == {"imported"}
    sessions = {}
    for notification_id in ids:
        sessions[notification_id] = session_of(bridge, notification_id)["session_id"]
    return sessions


def status_updates(bridge: BridgeProcess, notification_id: str) -> list[str]:
    """The statuses of a notification's ``share.status_updated`` events, in order."""
    bodies = [orjson.loads(body) for body in bridge.event_bodies(notification_id)]
    return [
        body["data"]["session"]["status"]
        for body in bodies
        if body["type"] == "share.status_updated"
    ]


def test_a_replayed_older_decision_is_answered_200_and_changes_nothing(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """Approved (signed 60 s ago), then Declined (30 s ago), then the Approved bytes again."""
    bridge = make_bridge(didit_webhooks=True)
    [(notification_id, session_id)] = imported_sessions(bridge, control, target, 1).items()
    url = f"{bridge.base_url}/v1/didit/webhooks"
    now = time.time()
    approved = signed_webhook(target, session_id, "Approved", at=now - 60)
    declined = signed_webhook(target, session_id, "Declined", at=now - 30)
    with httpx.Client(timeout=10.0) as client:
        for body, headers in (approved, declined):
            answer = client.post(url, content=body, headers=headers)
            assert (answer.status_code, answer.json()) == (200, {"status": "recorded"})
        for _ in range(3):
            body, headers = approved
            replay = client.post(url, content=body, headers=headers)
            assert replay.status_code == 200
            assert replay.json() != {"status": "recorded"}
    assert session_of(bridge, notification_id)["status"] == "Declined"
    assert status_updates(bridge, notification_id) == ["Approved", "Declined"]


def test_a_decision_racing_an_undecided_status_always_wins(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """ "Approved" and "In Progress" for one session sent at the same moment, for several
    sessions: every one ends Approved, and its last event says so."""
    bridge = make_bridge(didit_webhooks=True)
    sessions = imported_sessions(bridge, control, target, 8)
    url = f"{bridge.base_url}/v1/didit/webhooks"
    now = time.time()

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            sends = []
            for n, session_id in enumerate(sessions.values()):
                pair = [
                    signed_webhook(target, session_id, "Approved", at=now),
                    signed_webhook(target, session_id, "In Progress", at=now),
                ]
                for body, headers in pair if n % 2 else pair[::-1]:
                    sends.append(client.post(url, content=body, headers=headers))
            return list(await asyncio.gather(*sends))

    assert {answer.status_code for answer in asyncio.run(race())} == {200}
    for notification_id in sessions:
        assert session_of(bridge, notification_id)["status"] == "Approved"
        assert status_updates(bridge, notification_id)[-1] == "Approved"
