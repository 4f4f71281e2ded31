"""Crash safety (issue 4): SIGKILL ``bridge serve`` three times while the sandbox loses answers.

300 notifications are accepted (each for its own source session), then the bridge is killed
with SIGKILL (a) while the first imports are in flight, (b) in the middle of the drain and (c)
while it reconciles, and restarted each time on the same SQLite file. The sandbox meanwhile adds
latency and loses answers in all three ways (a 504 after the commit, a dropped connection, an
answer slower than the client's timeout). Afterwards:

- every notification answered 202 reached a final state (here: ``imported``, as every token
  was good and for us);
- the sandbox's redemption ledger holds no source session twice;
- every notification whose source session the ledger shows redeemed ended ``imported``, with
  exactly the Didit session the ledger created: an ambiguous import is never reported as
  rejected, failed or expired.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.pipeline.ambiguity import AttemptResult
from bridge.sandbox.control import SandboxControl
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.read_only import read_rows
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NOTIFICATIONS = 300
WAIT_S = 30.0


def test_sigkill_at_three_points_loses_nothing_and_redeems_nothing_twice(
    control: SandboxControl, target: SandboxTarget, make_bridge: Callable[..., BridgeProcess]
) -> None:
    acme = control.application("acme")
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    tokens = control.bulk_tokens(acme["application_id"], target.application_id, NOTIFICATIONS)
    bridge = make_bridge(timeout_s=1.0, rate_limit_per_minute=6000, max_in_flight=8)
    control.set_faults(
        "import",
        latency_ms=20,
        jitter_ms=80,
        ambiguous_rate=0.25,
        ambiguous_modes=["504", "drop", "slow"],
        slow_delay_s=2.5,  # longer than the bridge's 1 s timeout
    )
    control.set_faults("list", latency_ms=150, jitter_ms=100)  # reconciling takes a while

    accepted: dict[str, int] = {}  # notification id -> index of its token
    for index, token in enumerate(tokens):
        response = bridge.post_share(
            "acme", {"share_token": token, "event_id": f"evt-{index}", "customer": f"c{index}"}
        )
        assert response.status_code == 202, response.text
        accepted[response.json()["id"]] = index
    assert len(accepted) == NOTIFICATIONS

    # (a) right after intake, while the first imports are in flight
    wait_until(lambda: len(control.calls()) >= 3, "the first import calls", timeout_s=WAIT_S)
    bridge.kill()
    bridge.start()
    # (b) in the middle of the drain
    wait_until(
        lambda: len(control.redemptions()) >= NOTIFICATIONS // 2,
        "half the imports",
        timeout_s=WAIT_S,
    )
    bridge.kill()
    bridge.start()
    # (c) while it reconciles (the attempts cut short by (b) are reconciled first)
    wait_until(lambda: _reconciling(bridge.db_path), "a reconciliation in flight", timeout_s=WAIT_S)
    bridge.kill()
    bridge.start()

    final = bridge.wait_for(accepted, timeout_s=WAIT_S)
    notifications = {n.id: n for n in bridge.notifications() if n.id in accepted}
    redemptions = control.redemptions()
    assert control.double_redemptions() == []
    redeemed = {r["source_session_id"]: r["new_session_id"] for r in redemptions}
    assert len(redeemed) == len(redemptions)
    for notification in notifications.values():
        if notification.source_session_id in redeemed:
            assert notification.status.value == "imported", (notification.id, notification)
            assert notification.session is not None
            assert notification.session.session_id == redeemed[notification.source_session_id]
    assert Counter(final.values()) == {"imported": NOTIFICATIONS}
    assert {n.source_session_id for n in notifications.values()} == set(redeemed)

    # The run did go through what it claims to survive.
    faults = Counter(call["fault"] for call in control.calls() if call["endpoint"] == "import")
    assert {"ambiguous_504", "ambiguous_drop", "ambiguous_slow"} <= set(faults), faults
    attempts = _attempt_summary(bridge.db_path)
    assert attempts["cut_short_by_a_kill"] >= 1, attempts
    assert attempts["ambiguous"] >= 1, attempts
    assert attempts["reconciled_imported"] >= 1, attempts
    output = bridge.output()
    assert not any(token in output for token in tokens[:20])  # tokens are never logged


def _reconciling(db_path: Path) -> bool:
    rows = read_rows(
        db_path,
        "SELECT count(*) FROM import_attempts WHERE kind = 'reconcile' AND ended_at IS NULL",
    )
    return bool(rows[0][0])


def _attempt_summary(db_path: Path) -> dict[str, int]:
    """How attempts ended: left open by a kill, lost answers, reconciliations that found one."""
    (row,) = read_rows(
        db_path,
        f"""SELECT
             sum(kind = 'import' AND ended_at IS NULL),
             sum(kind = 'import' AND result = '{AttemptResult.AMBIGUOUS}'),
             sum(kind = 'reconcile' AND result = '{AttemptResult.RECONCILED_IMPORTED}')
           FROM import_attempts""",  # noqa: S608 - constants of ours, not input
    )
    cut_short, ambiguous, found = (int(value or 0) for value in row)
    return {"cut_short_by_a_kill": cut_short, "ambiguous": ambiguous, "reconciled_imported": found}
