"""``bridge route`` gives the verdict intake gives: every sample, and bodies hypothesis makes,
go through both (intake over HTTP with a real store, signed as the partner signs) and must get
the same status and code. Either side changing its checks alone breaks this."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import auth, config
from bridge.app import Health, Intake, LiveConfig, create_app
from bridge.cli import route_command
from bridge.store import open_store
from tests.route.sample_environment import ENVIRON, OURS, SAMPLES

NOW = 1_780_000_000
SETTINGS = config.load(SAMPLES / "bridge.yaml", environ=ENVIRON)
PARTNERS = ["acme", "globex", "initech", "hooli", "umbrella"]  # umbrella is not configured

Verdict = tuple[int, str]


def route_verdict(partner: str, body: bytes) -> Verdict:
    """What ``bridge route`` says intake would answer: (status, code)."""
    refusal = route_command.evaluate(SETTINGS, partner=partner, body=body, now=NOW).refusal
    if refusal is None:
        return 202, "accepted"
    assert refusal.status is not None
    assert refusal.code is not None
    return refusal.status, refusal.code


async def intake_verdicts(bodies: list[tuple[str, bytes]]) -> list[Verdict]:
    """What intake answers each (partner, body), signed by the partner, over a fresh store."""
    with tempfile.TemporaryDirectory(prefix="route-vs-intake-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'bridge.db'}", clock=lambda: NOW)
        live = LiveConfig(settings=SETTINGS, verifiers=auth.verifiers_for(SETTINGS))
        intake = Intake(live=lambda: live, store=store, on_accepted=lambda: None, clock=lambda: NOW)
        app = create_app(intake=intake, health=Health(store=store, workers_running=lambda: True))
        transport = httpx.ASGITransport(app=app)
        verdicts: list[Verdict] = []
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
                for partner, body in bodies:
                    headers = {"content-type": "application/json"}
                    if partner in SETTINGS.partners:
                        partner_auth = SETTINGS.partners[partner].auth
                        message_id = f"msg-{uuid.uuid4()}"
                        headers = auth.partner_headers(
                            partner_auth, body, now=NOW, message_id=message_id
                        )
                    answer = await client.post(
                        f"/v1/partners/{partner}/shares", content=body, headers=headers
                    )
                    document = answer.json()
                    if answer.status_code in (200, 202):  # a duplicate is an accept, stored once
                        verdicts.append((202, "accepted"))
                    else:
                        verdicts.append((answer.status_code, document["error"]["code"]))
        finally:
            await store.close()
        return verdicts


def sample_bodies() -> list[tuple[str, bytes]]:
    bodies = sorted(SAMPLES.glob("*.json"))
    return [(partner, path.read_bytes()) for path in bodies for partner in PARTNERS]


def test_every_sample_gets_the_same_verdict_from_route_and_intake() -> None:
    cases = sample_bodies()
    intake = asyncio.run(intake_verdicts(cases))
    route = [route_verdict(partner, body) for partner, body in cases]
    disagreements = [
        (partner, body[:80], by_route, by_intake)
        for (partner, body), by_route, by_intake in zip(cases, route, intake, strict=True)
        if by_route != by_intake
    ]
    assert disagreements == []
    # The samples reach every kind of verdict, so the comparison is not vacuous.
    assert {code for _, code in intake} >= {
        "accepted",
        "unknown_partner",
        "invalid_json",
        "missing_share_token",
        "malformed_share_token",
        "share_token_expired",
        "share_token_not_for_this_application",
        "no_matching_rule",
        "vendor_data_unresolved",
        "nul_character",
    }


def _token(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, "samples-key-the-bridge-never-checks", algorithm="HS256")


claims = st.fixed_dictionaries(
    {},
    optional={
        "session_id": st.sampled_from(["s-1", "s-2", ""]) | st.integers(-(2**40), 2**40),
        "session_kind": st.sampled_from(["user", "business", "other"]) | st.none(),
        "from_application_id": st.sampled_from([OURS, "5e1f0c3a-7777-4888-9999-aaaabbbbcccc"]),
        "for_application_id": st.sampled_from([OURS, "0b0b0b0b-2222-4333-8444-555566667777"])
        | st.integers(),
        "exp": st.sampled_from([NOW - 3_600, NOW - 10, NOW + 10, NOW + 3_600])
        | st.text(max_size=3),
    },
)
odd_tokens = (
    st.sampled_from(["", "a.b.c", "not-a-jwt", "eyJ.eyJ.x"])
    | st.none()
    | st.integers(-(2**40), 2**40)
    | st.lists(st.integers(-9, 9), max_size=2)
    | st.dictionaries(st.text(max_size=2), st.integers(-9, 9), max_size=1)
)
# Mostly tokens that get past the structural checks, so the later checks are reached often.
tokens = st.one_of(claims.map(_token), claims.map(_token), claims.map(_token), odd_tokens)
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "event_id": scalars,
        "meta": st.fixed_dictionaries({"delivery_id": scalars}),
        "region": st.sampled_from(["EU", "UK", "US"]) | scalars,
        "customer": st.fixed_dictionaries({"id": scalars}),
        "company": st.fixed_dictionaries({"registration_number": scalars}),
        "reference": st.sampled_from(["GX-123456", "GX-12"]) | scalars,
        "vip": scalars,
        "priority": st.fixed_dictionaries({"level": scalars}),
        "tier": scalars,
    },
)


@st.composite
def with_token(draw: st.DrawFn) -> dict[str, Any]:
    """A payload with a token at the top-level path and at globex's nested one (mostly)."""
    payload: dict[str, Any] = draw(payloads)
    token = draw(tokens)
    if draw(st.integers(0, 4)):
        payload["share_token"] = token
        payload["data"] = {"share": {"token": token}}
    return payload


raw_bodies = st.one_of(
    with_token().map(orjson.dumps),
    with_token().map(orjson.dumps),
    with_token().map(orjson.dumps),
    with_token().map(orjson.dumps),
    st.lists(scalars, max_size=2).map(orjson.dumps),
    scalars.map(orjson.dumps),
    st.binary(max_size=40),
    st.integers(65_000, 66_500).map(lambda size: b'{"pad": "' + b"x" * size + b'"}'),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(st.tuples(st.sampled_from(PARTNERS), raw_bodies), min_size=1, max_size=8))
def test_hypothesis_bodies_get_the_same_verdict_from_route_and_intake(
    cases: list[tuple[str, bytes]],
) -> None:
    intake = asyncio.run(intake_verdicts(cases))
    route = [route_verdict(partner, body) for partner, body in cases]
    assert route == intake


@pytest.mark.parametrize("token", [17, ["a"], {"a": 1}])
def test_a_token_that_is_not_a_string_is_malformed_for_both(token: object) -> None:
    body = orjson.dumps({"share_token": token, "region": "EU", "customer": {"id": "C-1"}})
    assert route_verdict("acme", body) == (422, "malformed_share_token")
    assert asyncio.run(intake_verdicts([("acme", body)])) == [(422, "malformed_share_token")]
