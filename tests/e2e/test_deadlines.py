"""Deadlines (issue 4): a backlog larger than the quota allows is worked earliest deadline first.

The sandbox's quota and the bridge's pace are 60 imports a minute (one a second). Ten tokens
that live ten minutes are accepted first, then ten that live only seconds (minted through the
control API's ``expires_in_s``, below Didit's 60 s minimum), then one whose deadline has already
passed. The bridge holds eight imports in flight, so a first-come-first-served pacer would send
eight long-lived tokens before any short one and let the shortest expire.

An earliest-deadline-first schedule at the same rate, from the same acceptance times, is
computed from the tokens' ``exp`` claims; every token it could redeem in time must end
``imported``, the short tokens must overtake the long backlog, and the hopeless one must end
``expired`` without an import call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bridge.app.intake import DEADLINE_MARGIN_S
from bridge.sandbox.control import SandboxControl
from bridge.tokens import read_share_token
from tests.support.bridge_process import BridgeProcess, SandboxTarget

pytestmark = pytest.mark.e2e

RATE_PER_MINUTE = 60
IN_FLIGHT = 8
LONG = 10
SHORT = 10
#: A short token k lives SHORT_BASE_S + 2k seconds past the deadline margin: an EDF schedule
#: has seconds of slack for each, a first-come-first-served one misses the first few.
SHORT_BASE_S = 5


@dataclass(frozen=True, slots=True)
class Share:
    name: str  # long-3, short-0, hopeless
    token: str
    source_session_id: str
    deadline: float  # exp minus the bridge's margin
    accepted_at: float = 0.0
    notification_id: str = ""


def test_short_deadlines_go_first_and_nothing_feasible_expires(
    control: SandboxControl, target: SandboxTarget, make_bridge: Callable[..., BridgeProcess]
) -> None:
    acme = control.application("acme")["application_id"]
    control.set_quota(write_limit=RATE_PER_MINUTE)  # Didit's 60 s window
    bridge = make_bridge(rate_limit_per_minute=RATE_PER_MINUTE, max_in_flight=IN_FLIGHT)
    long_tokens = control.bulk_tokens(acme, target.application_id, LONG, ttl_in_seconds=600)
    sessions = [control.create_session(acme)["session_id"] for _ in range(SHORT + 1)]
    planned = [(f"long-{k}", token) for k, token in enumerate(long_tokens)]
    for k, session_id in enumerate(sessions[:SHORT]):
        expires_in = int(DEADLINE_MARGIN_S) + SHORT_BASE_S + 2 * k
        token = control.mint_token(session_id, target.application_id, expires_in_s=expires_in)
        planned.append((f"short-{k}", token))
    # Past its deadline (exp minus the margin) yet inside intake's leeway: accepted, hopeless.
    hopeless = control.mint_token(sessions[SHORT], target.application_id, expires_in_s=5)
    planned.append(("hopeless", hopeless))

    shares: list[Share] = []
    for name, token in planned:  # long ones first, the short ones last
        claims = read_share_token(token)
        assert claims.exp is not None
        assert claims.session_id is not None
        response = bridge.post_share("acme", {"share_token": token, "customer": name})
        assert response.status_code == 202, response.text
        shares.append(
            Share(
                name=name,
                token=token,
                source_session_id=claims.session_id,
                deadline=claims.exp - DEADLINE_MARGIN_S,
                accepted_at=time.time(),
                notification_id=response.json()["id"],
            )
        )

    final = bridge.wait_for([s.notification_id for s in shares], timeout_s=45)
    redeemed_at = {r["source_session_id"]: r["at"] for r in control.redemptions()}
    by_name = {s.name: s for s in shares}

    feasible = edf_feasible(shares, per_s=RATE_PER_MINUTE / 60)
    missed = [name for name in feasible if final[by_name[name].notification_id] != "imported"]
    assert not missed, f"an EDF schedule redeems these in time: {missed}; outcomes {final}"
    assert {f"short-{k}" for k in range(SHORT)} <= feasible  # the scenario is as designed

    # The short ones overtake the backlog: only the longs already granted a send before the
    # short ones could be claimed go first, and the short ones then run back to back.
    order = sorted(
        (redeemed_at[s.source_session_id], s.name)
        for s in shares
        if s.source_session_id in redeemed_at
    )
    names = [name for _, name in order]
    first_short = next(i for i, name in enumerate(names) if name.startswith("short-"))
    assert first_short <= 3, names
    assert all(n.startswith("short-") for n in names[first_short : first_short + SHORT]), names

    # The hopeless one expired without a call.
    hopeless_share = by_name["hopeless"]
    assert final[hopeless_share.notification_id] == "expired"
    assert hopeless_share.source_session_id not in redeemed_at
    timeline = bridge.shown(hopeless_share.notification_id)
    assert timeline is not None
    assert [a for a in timeline["attempts"] if a["kind"] == "import"] == []


def edf_feasible(shares: list[Share], *, per_s: float) -> set[str]:
    """The shares an earliest-deadline-first schedule redeems before their deadlines, sending
    one every ``1 / per_s`` seconds from the first acceptance, each once it is accepted."""
    pending = sorted(shares, key=lambda s: s.accepted_at)
    released: list[Share] = []
    done: set[str] = set()
    slot = pending[0].accepted_at
    while pending or released:
        while pending and pending[0].accepted_at <= slot:
            released.append(pending.pop(0))
        released = [s for s in released if s.deadline > slot]  # too late for any schedule
        if not released:
            if not pending:
                break
            slot = max(slot, pending[0].accepted_at)
            continue
        chosen = min(released, key=lambda s: s.deadline)
        released.remove(chosen)
        done.add(chosen.name)
        slot += 1 / per_s
    return done
