"""Outgrowing SQLite: a bridge on SQLite is killed mid-drain, ``bridge store copy`` moves its
store into PostgreSQL, and a bridge on the copy finishes the work.

A third of the import answers are lost on the way back (Didit imported, the bridge never
heard), so at the kill some imports are running under a lease and some ended ambiguous. Every
share must end imported exactly once, without waiting for the dead bridge's leases (the copy
releases them), and the bridge on the copy reconciles an ambiguous import with Didit before it
would send it again.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import pytest

from bridge.sandbox.control import SandboxControl
from tests.store.backends import TOKEN_KEY
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SHARES = 24


def test_a_bridge_on_the_copy_finishes_the_work_without_redeeming_twice(
    control: SandboxControl,
    target: SandboxTarget,
    make_bridge: Callable[..., BridgeProcess],
    pg_store: dict[str, object],
) -> None:
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    control.set_faults("import", latency_ms=50, ambiguous_rate=0.34, ambiguous_modes=["drop"])
    acme = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(acme, target.application_id, SHARES)
    on_sqlite = make_bridge(rate_limit_per_minute=120, max_in_flight=2)
    ids = []
    for index, token in enumerate(tokens):
        response = on_sqlite.post_share("acme", {"share_token": token, "customer": f"c{index}"})
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    wait_until(lambda: len(control.redemptions()) >= 6, "the drain to be under way")
    on_sqlite.kill()  # leases held, answers lost: the work a copy must carry over
    assert 6 <= len(control.redemptions()) < SHARES

    key = base64.urlsafe_b64encode(TOKEN_KEY).decode()
    command = [
        sys.executable, "-m", "bridge", "store", "copy",
        "--from", f"sqlite:///{on_sqlite.db_path}",
        "--to", str(pg_store["url"]), "--schema", str(pg_store["schema"]),
    ]  # fmt: skip
    env = {**os.environ, "BRIDGE_TOKEN_KEY": key}
    copied = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert copied.returncode == 0, copied.stderr
    assert f"copied {SHARES} notifications" in copied.stdout

    control.clear_faults("import")
    on_postgres = make_bridge(store=pg_store, rate_limit_per_minute=6000, max_in_flight=4)

    def all_final() -> dict[str, str]:
        statuses = {n.id: n.status.value for n in on_postgres.notifications()}
        return statuses if all(statuses.get(i) not in (None, "pending") for i in ids) else {}

    # Well within the killed bridge's 60 s leases: the copy released them, nobody waits.
    final = wait_until(all_final, "every share final on the copy", timeout_s=30)
    assert Counter(final[i] for i in ids) == {"imported": SHARES}
    assert control.double_redemptions() == []
    redeemed = Counter(r["source_session_id"] for r in control.redemptions())
    assert len(redeemed) == SHARES
    assert set(redeemed.values()) == {1}
