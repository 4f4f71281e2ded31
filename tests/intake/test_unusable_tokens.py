"""Tokens whose claims no store or date can hold, and replays of duplicate messages."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter

import pytest

from tests.intake.conftest import PARTNER_APP, Harness, error_code, share_token
from tests.store.helpers import START

pytestmark = pytest.mark.anyio


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def raw_token(claims: dict[str, object]) -> str:
    """A token whose claims are ``claims`` as JSON (a lone surrogate is written ``\\ud800``)."""
    header = segment(b'{"alg":"HS256","typ":"JWT"}')
    return ".".join([header, segment(json.dumps(claims).encode()), "c2ln"])


SURROGATE = raw_token(
    {"session_id": "\ud800", "from_application_id": PARTNER_APP, "exp": START + 3600}
)


async def test_a_lone_surrogate_is_a_malformed_token(harness: Harness) -> None:
    """Refused as malformed before the store: not a 500 when SQLite cannot encode it."""
    for kind in ("session_id", "session_kind", "for_application_id", "customer_ref"):
        token = raw_token({kind: "\udc00", "exp": START + 3600})
        answer = await harness.post("hooli", {"share_token": token, "customer": "c"})
        assert (answer.status_code, error_code(answer)) == (422, "malformed_share_token")
    assert sum((await harness.store.stats()).notifications.values()) == 0


async def test_a_bad_token_among_a_group_fails_alone(harness: Harness) -> None:
    """30 good notifications sent with a bad one: 30 accepted, the bad one refused."""
    bodies = [{"share_token": share_token(), "customer": f"c{i}"} for i in range(30)]
    bodies.insert(15, {"share_token": SURROGATE, "customer": "evil"})
    for _ in range(3):
        answers = await asyncio.gather(*(harness.post("hooli", body) for body in bodies))
        assert answers[15].status_code == 422
        assert Counter(answer.status_code for answer in answers) == {202: 30, 422: 1}
        for i in range(len(bodies)):  # new shares, the same bad one
            if i != 15:
                bodies[i] = {"share_token": share_token(), "customer": f"c{i}"}


async def test_an_exp_no_date_can_hold_is_no_exp(harness: Harness) -> None:
    """exp = 2**62 is accepted as a token without exp: no deadline that breaks a listing."""
    token = raw_token({"session_id": "s-far", "from_application_id": PARTNER_APP, "exp": 2**62})
    answer = await harness.post("hooli", {"share_token": token, "customer": "c"})
    assert answer.status_code == 202
    stored = await harness.store.load_notification(answer.json()["id"])
    assert stored is not None
    assert stored.deadline is None


async def test_a_duplicate_message_keeps_its_answer_after_the_token_expired(
    harness: Harness,
) -> None:
    """W2 repeats W1's share; once the token expired, both replays are still duplicates."""
    body = {"share_token": share_token(exp=START + 120), "customer": "c"}
    first = await harness.post("acme", body, message_id="W1")
    second = await harness.post("acme", body, message_id="W2")
    assert first.status_code == 202
    assert second.json() == {"id": first.json()["id"], "status": "duplicate"}
    harness.clock.advance(400)
    for message_id in ("W1", "W2"):
        replay = await harness.post("acme", body, message_id=message_id)
        assert replay.status_code == 200, replay.text
        assert replay.json() == {"id": first.json()["id"], "status": "duplicate"}
