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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from bridge import tokens
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.sink import VERIFIED, Sink, SinkEndpoint
from tests.support.asgi_server import serve_in_thread
from tests.support.bridge_process import SandboxTarget, default_rules
from tests.support.fixtures import bridge_factory
from tests.support.ops_bridge import OpsBridge
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PARTNERS = ("acme", "globex", "initech")  # a sandbox application and a bridge partner each
PER_KIND = 50  # shares per partner and session kind: 3 x 2 x 50 = 300
SINK_SECRET = "whsec_" + base64.b64encode(b"three-replicas-sink-secret-32by").decode()
KILL_AT, RESTART_AT = 120, 180  # the victim is down while these notifications are sent


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


@pytest.fixture
def make_ops_bridge(tmp_path: Path, target: SandboxTarget) -> Iterator[Any]:
    yield from bridge_factory(OpsBridge, tmp_path, target)


def test_three_replicas_import_every_share_once(
    control: SandboxControl,
    target: SandboxTarget,
    make_ops_bridge: Any,
    pg_store: dict[str, object],
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
        replicas: list[OpsBridge] = [make_ops_bridge(**options) for _ in range(3)]
        victim = replicas[2]

        def pick(*avoid: OpsBridge) -> OpsBridge:
            # The test models a load balancer: a request meant for the killed replica while it
            # is down goes to a live one instead.
            live = [r for r in replicas if r.running and r not in avoid]
            chosen = rng.choice(replicas)
            return chosen if chosen in live else rng.choice(live)

        accepted: dict[str, Share] = {}
        duplicates = 0
        for index, share in enumerate(shares):
            if index == KILL_AT:
                victim.kill()  # mid-run: its leases are taken over, nothing is lost
            if index == RESTART_AT:
                victim.start()
            here = pick()
            body = {
                "share_token": share.token,
                "event_id": f"evt-{index}",
                "customer": share.customer,
            }
            message_id = f"m-{index}"
            response = here.post_share(share.partner, body, message_id=message_id)
            assert response.status_code == 202, response.text
            notification_id = response.json()["id"]
            accepted[notification_id] = share
            repeats = []
            if index % 10 == 0:  # the same partner event, signed again a second later
                repeat = pick(here).post_share(
                    share.partner, body, message_id=message_id, now=time.time() + 1
                )
                repeats.append(repeat)
            if index % 20 == 5:  # a second token for the same share, as a new partner event
                second = control.mint_token(share.session_id, target.application_id)
                again = {
                    "share_token": second,
                    "event_id": f"evt-{index}-b",
                    "customer": share.customer,
                }
                repeats.append(pick(here).post_share(share.partner, again))
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
        assert _listed(replica) == set(accepted)
        output = replica.output()
        assert not any(share.token in output for share in shares[:20])
        assert "Traceback" not in output


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


def _listed(replica: OpsBridge) -> set[str]:
    """Every notification id the replica's admin API lists, page by page."""
    ids: set[str] = set()
    before = ""
    while True:
        page = replica.admin("GET", f"/notifications?limit=500{before}")
        assert page.status_code == 200, page.text
        document = page.json()
        ids |= {item["id"] for item in document["items"]}
        if document["next"] is None:
            return ids
        before = f"&before={document['next']}"
