"""SIGTERM under load: intake answers 503 from the signal on (also on connections already open),
in-flight imports finish or are released, the process exits 0 within its deadline, and a restart
completes every accepted notification, each redeemed exactly once."""

from __future__ import annotations

import queue
import signal
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import orjson
import pytest

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import tokens
from tests.support.bridge_process import BridgeProcess, SandboxTarget
from tests.support.fixtures import MakeBridge
from tests.support.read_only import read_rows
from tests.support.waiting import wait_until

CLIENTS = 4
EXIT_DEADLINE_S = 30.0  # STOP_DEADLINE_S (20) for in-flight imports, plus the drain grace


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    status: int | None  # None: the connection was refused or closed
    code: str | None
    notification_id: str | None


def _post(bridge: BridgeProcess, client: httpx.Client, token: str, customer: str) -> Answer:
    body = orjson.dumps({"share_token": token, "customer": customer})
    headers = bridge.sign("acme", body, message_id=f"load-{uuid.uuid4().hex}")
    started = time.monotonic()
    try:
        response = client.post(
            f"{bridge.base_url}/v1/partners/acme/shares", content=body, headers=headers
        )
    except httpx.TransportError:
        return Answer(started, time.monotonic(), None, None, None)
    document = response.json()
    code = document["error"]["code"] if "error" in document else document["status"]
    return Answer(started, time.monotonic(), response.status_code, code, document.get("id"))


def _load(bridge: BridgeProcess, pool: queue.Queue[str], answers: list[Answer], n: int) -> None:
    with httpx.Client(timeout=10.0) as client:  # one keep-alive connection per load client
        while True:
            try:
                token = pool.get_nowait()
            except queue.Empty:
                return
            answer = _post(bridge, client, token, f"load-{n}-{pool.qsize()}")
            answers.append(answer)
            if answer.status is None:
                return


@pytest.mark.e2e
def test_sigterm_under_load(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """503 after the signal, exit 0 in time, nothing left running, all done after a restart."""
    bridge = make_bridge(max_in_flight=2)
    control.set_faults("import", latency_ms=300)  # imports are in flight when the signal comes
    shares = tokens(control, target, 80)
    pool: queue.Queue[str] = queue.Queue()
    for share in shares[11:]:
        pool.put(share)
    reserved = iter(shares[1:11])  # for the connection kept open across the signal
    answers: list[Answer] = []
    with httpx.Client(timeout=10.0) as kept_open:
        warm = _post(bridge, kept_open, shares[0], "warm")  # opens the keep-alive connection
        assert warm.status == 202
        threads = [
            threading.Thread(target=_load, args=(bridge, pool, answers, n)) for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: sum(a.status == 202 for a in answers) >= 20, "20 shares accepted")
        assert bridge.process is not None
        signalled = time.monotonic()
        bridge.process.send_signal(signal.SIGTERM)
        # The connection opened before the signal is still served, with 503 until it closes.
        drained: Answer | None = None
        while drained is None or drained.status == 202:
            drained = _post(bridge, kept_open, next(reserved), "kept-open")
            answers.append(drained)
        assert (drained.status, drained.code) == (503, "shutting_down"), drained
        for thread in threads:
            thread.join(timeout=20)
        exit_code = bridge.process.wait(timeout=EXIT_DEADLINE_S)
    stopped = time.monotonic() - signalled
    assert exit_code == 0, bridge.output()[-3000:]
    assert stopped < EXIT_DEADLINE_S

    first_503 = min(a.ended for a in answers if a.status == 503)
    late = [a for a in answers if a.started > first_503 and a.status not in (503, None)]
    assert late == [], "intake accepted work after it began to refuse it"
    assert all(a.status in (202, 503, None) for a in answers), answers
    accepted = [warm.notification_id] + [a.notification_id for a in answers if a.status == 202]

    # Nothing is left leased: each in-flight import finished or was released.
    with sqlite3.connect(bridge.db_path) as db:
        running = db.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()[0]
        pending = db.execute(
            "SELECT count(*) FROM notifications WHERE status = 'pending'"
        ).fetchone()[0]
    db.close()
    assert running == 0
    assert pending > 0, "the test should stop the bridge with work still queued"
    stopped_lines = [line for line in bridge.log_lines() if line.get("event") == "worker_stopped"]
    assert {line["kind"] for line in stopped_lines} >= {"import"}

    # A restart completes everything accepted, each share redeemed once.
    control.clear_faults()
    bridge.start()
    outcomes = bridge.wait_for([i for i in accepted if i is not None], timeout_s=60)
    assert set(outcomes.values()) == {"imported"}
    assert len(outcomes) == len(accepted)
    assert len(control.redemptions()) == len(accepted)
    assert control.double_redemptions() == []


@pytest.mark.e2e
def test_sigterm_gives_back_imports_waiting_for_their_turn_at_once(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    """Imports claimed but still waiting at the pacer have sent nothing: SIGTERM releases them
    at once, attempt refunded, instead of holding the stop until the stop deadline (20 s)."""
    bridge = make_bridge(rate_limit_per_minute=1, max_in_flight=4)  # one send, then a minute
    ids = []
    for number, share in enumerate(tokens(control, target, 5)):
        answer = bridge.post_share("acme", {"share_token": share, "customer": f"c-{number}"})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])

    def job_counts() -> dict[str, int]:
        return dict(read_rows(bridge.db_path, "SELECT status, count(*) FROM jobs GROUP BY status"))

    wait_until(  # the first import answered, four claimed and waiting at the pacer
        job_counts,
        "four jobs waiting at the pacer",
        holds=lambda found: found.get("running") == 4 and len(control.redemptions()) == 1,
    )

    signalled = time.monotonic()
    assert bridge.terminate() == 0, bridge.output()[-3000:]
    stopped_in = time.monotonic() - signalled

    assert stopped_in < 5.0, f"the stop waited {stopped_in:.1f} s for imports not yet sent"
    with sqlite3.connect(bridge.db_path) as db:
        jobs = db.execute(
            "SELECT status, attempts FROM jobs WHERE kind = 'import' AND status <> 'done'"
        ).fetchall()
    db.close()
    assert sorted(jobs) == [("queued", 0)] * 4
    released = [line for line in bridge.log_lines() if line.get("event") == "job_released"]
    assert len(released) == 4
    assert len(control.redemptions()) == 1
