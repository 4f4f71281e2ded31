"""Three ``bridge serve`` replicas on one PostgreSQL database behave as one bridge.

300 notifications (KYC and KYB shares of three partners) are each sent to a replica picked by a
seeded random; every tenth is sent again, signed afresh, to another replica (a partner's retry
landing elsewhere), and every twentieth share gets a second token minted and sent as a new
partner event (a second notification for the same share). The sandbox answers 10 % of the
imports ambiguously (done, answer lost) and 5 % with a 5xx; one replica is SIGKILLed mid-run and
restarted. Every share ends imported exactly once (the sandbox's ledger holds no source session
twice), the sink gets one notification id and one event id per share, every repeat was answered
200 duplicate with the original id, and the admin API of every replica lists all 300.
"""

from __future__ import annotations

import base64
import random
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import httpx
import orjson
import pytest

from bridge import tokens
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.sink import VERIFIED, Sink, SinkEndpoint
from tests.e2e.conftest import MakeBridge
from tests.support.asgi_server import serve_in_thread
from tests.support.bridge_process import BridgeProcess, SandboxTarget, default_rules
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PARTNERS = ("acme", "globex", "initech")  # a sandbox application and a bridge partner each
PER_KIND = 50  # shares per partner and session kind: 3 x 2 x 50 = 300
SINK_SECRET = "whsec_" + base64.b64encode(b"three-replicas-sink-secret-32by").decode()
VICTIM = 2  # the replica SIGKILLed after the first phase and started again after the second
PHASES = ((0, 120), (120, 180), (180, 300))
SENDERS = 8  # partners sending at once


@dataclass(frozen=True, slots=True)
class Share:
    partner: str
    token: str
    session_id: str
    customer: str


@dataclass(slots=True)
class Received:
    """What the sink verified, per share: notification ids, and event ids per type."""

    notification_ids: defaultdict[str, set[str]]
    event_ids: defaultdict[tuple[str, str], set[str]]

    def __call__(self, destination: str, verdict: str, body: bytes) -> None:
        if verdict != VERIFIED:
            return
        event = orjson.loads(body)
        data: dict[str, Any] = event["data"]
        self.notification_ids[data["source"]["session_id"]].add(data["notification_id"])
        self.event_ids[(data["notification_id"], event["type"])].add(event["id"])


def test_three_replicas_import_every_share_once(
    control: SandboxControl,
    target: SandboxTarget,
    pg_store: dict[str, object],  # before the bridges: dropped after they stopped
    make_bridge: MakeBridge,
) -> None:
    rng = random.Random(14)
    shares = _shares(control, target)
    rng.shuffle(shares)
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    control.set_faults(
        "import", latency_ms=5, ambiguous_rate=0.10, ambiguous_modes=["504", "drop"],
        error_rate=0.05,
    )  # fmt: skip
    received = Received(defaultdict(set), defaultdict(set))
    sink = Sink([SinkEndpoint("sink", (SINK_SECRET,))], on_answer=received)
    with serve_in_thread(sink.app) as sink_url:
        destination = {
            "url": f"{sink_url}/hooks/sink",
            "secrets": [SINK_SECRET],
            "timeout_s": 2,
            "retry_schedule": ["1s", "1s", "1s"],
        }
        rules = [
            {**rule, "then": {**rule["then"], "destinations": ["sink"]}}
            for rule in default_rules(target)
        ]
        options = {
            "store": pg_store,
            "rate_limit_per_minute": 30_000,
            "max_in_flight": 8,
            "rules": rules,
            "destinations": {"sink": destination},
        }
        replicas: list[BridgeProcess] = [make_bridge(start=False, **options) for _ in range(3)]
        with ThreadPoolExecutor(len(replicas)) as starting:
            list(starting.map(BridgeProcess.start, replicas))
        plan = _plan(shares, control, target, rng)
        accepted: dict[str, Share] = {}
        duplicates = 0
        with ThreadPoolExecutor(SENDERS) as senders:
            for phase, (first, last) in enumerate(PHASES):
                if phase == 1:
                    replicas[VICTIM].kill()  # mid-run: its leases are taken over, none is lost
                if phase == 2:
                    replicas[VICTIM].start()
                for step, answers in zip(
                    plan[first:last],
                    senders.map(partial(_send, replicas), plan[first:last]),
                    strict=True,
                ):
                    original, *repeats = answers
                    assert original.status_code == 202, original.text
                    notification_id = original.json()["id"]
                    accepted[notification_id] = step.share
                    for repeat in repeats:
                        assert (repeat.status_code, repeat.json()) == (
                            200, {"id": notification_id, "status": "duplicate"},
                        )  # fmt: skip
                        duplicates += 1
        assert len(accepted) == len(shares) == 300
        assert duplicates == 30 + 15

        final = replicas[0].wait_for(accepted, timeout_s=60)
        assert set(final.values()) == {"imported"}
        wait_until(
            lambda: all((n, "share.imported") in received.event_ids for n in accepted),
            "every share.imported at the sink",
            timeout_s=30,
        )

    assert control.double_redemptions() == []
    redeemed = [r["source_session_id"] for r in control.redemptions()]
    assert sorted(redeemed) == sorted(share.session_id for share in shares)
    assert {s: ids for s, ids in received.notification_ids.items() if len(ids) != 1} == {}
    assert {share.session_id for share in shares} == set(received.notification_ids)
    assert {key for key, ids in received.event_ids.items() if len(ids) != 1} == set()
    assert {n for n, _ in received.event_ids} == set(accepted)
    assert {t for _, t in received.event_ids} == {"share.imported"}
    for replica in replicas:
        assert {n["id"] for n in replica.listed()} == set(accepted)
        output = replica.output()
        assert not any(share.token in output for share in shares[:20])
        assert "Traceback" not in output


@dataclass(frozen=True, slots=True)
class Step:
    """One share's requests: replicas are indices into the test's list."""

    index: int
    share: Share
    first: int
    resend_to: int | None = None  # the same partner event, signed again, to this replica
    second_token: str | None = None  # a second token for the share, as a new partner event
    second_to: int | None = None


def _plan(
    shares: list[Share], control: SandboxControl, target: SandboxTarget, rng: random.Random
) -> list[Step]:
    """Which replica gets which request, drawn up front so that the draw does not depend on
    the order the senders run in."""
    replicas = range(3)
    steps: list[Step] = []
    for index, share in enumerate(shares):
        # The test models a load balancer: a request meant for the victim while it is down
        # goes to a live replica instead.
        down = PHASES[1][0] <= index < PHASES[1][1]
        live = [r for r in replicas if not (down and r == VICTIM)]
        first = rng.choice(live)
        others = [r for r in live if r != first]
        step = Step(index, share, first)
        if index % 10 == 0:
            step = replace(step, resend_to=rng.choice(others))
        if index % 20 == 5:
            second = control.mint_token(share.session_id, target.application_id)
            step = replace(step, second_token=second, second_to=rng.choice(others))
        steps.append(step)
    return steps


def _send(replicas: list[BridgeProcess], step: Step) -> list[httpx.Response]:
    """The step's requests in order: the notification, then its repeats."""
    share = step.share
    body = {"share_token": share.token, "event_id": f"evt-{step.index}", "customer": share.customer}
    message_id = f"m-{step.index}"
    answers = [replicas[step.first].post_share(share.partner, body, message_id=message_id)]
    if step.resend_to is not None:  # a second later: a fresh signature over the same bytes
        resent = replicas[step.resend_to].post_share(
            share.partner, body, message_id=message_id, now=time.time() + 1
        )
        answers.append(resent)
    if step.second_token is not None and step.second_to is not None:
        again = {**body, "share_token": step.second_token, "event_id": f"evt-{step.index}-b"}
        answers.append(replicas[step.second_to].post_share(share.partner, again))
    return answers


def _shares(control: SandboxControl, target: SandboxTarget) -> list[Share]:
    """KYC and KYB shares of each partner's application, in our application's name."""
    found: list[Share] = []
    for partner in PARTNERS:
        source = control.application(partner)["application_id"]
        for kind in ("user", "business"):
            minted = control.bulk_tokens(source, target.application_id, PER_KIND, session_kind=kind)
            for token in minted:
                session_id = tokens.read_share_token(token).session_id
                assert session_id is not None
                found.append(Share(partner, token, session_id, f"{kind}-{len(found)}"))
    return found
