from __future__ import annotations

import io

import pytest

from bridge.demo.plan import Message, Scenario
from bridge.demo.progress import ProgressView, Tally, render, tally
from bridge.demo.summary import RunFacts, Upstream, end_to_end_ms, latencies_ms, table
from bridge.demo.summary import render as render_summary
from bridge.demo.verdict import Answer, DeliveryRecord, Recorded
from bridge.sandbox.sink import Receipt, SinkReport
from bridge.types import NotificationStatus
from tests.demo.helpers import plan_for

PLAN = plan_for(100)
KYC = next(m for m in PLAN if m.scenario is Scenario.KYC)
EXPIRED = next(m for m in PLAN if m.scenario is Scenario.EXPIRED)
REPLAY = next(m for m in PLAN if m.scenario is Scenario.REPLAY)


def receipt(notification_id: str, destination: str, at: float) -> Receipt:
    return Receipt(
        destination=destination,
        event_id=f"evt_{notification_id}",
        event_type="share.imported",
        notification_id=notification_id,
        received_at=at,
    )


def report(*receipts: Receipt) -> SinkReport:
    return SinkReport(receipts=receipts, requests={}, unavailable={"crm": 3}, rejected={})


def recorded(status: NotificationStatus) -> Recorded:
    return Recorded(partner="acme", status=status, reason=None, destinations=("crm", "audit"))


def answers() -> dict[int, Answer]:
    return {
        KYC.index: Answer(http_status=202, code="accepted", notification_id="n1", at=100.0),
        EXPIRED.index: Answer(
            http_status=422, code="share_token_expired", notification_id=None, at=100.0
        ),
        REPLAY.index: Answer(http_status=200, code="duplicate", notification_id="n0", at=100.0),
    }


def test_a_message_is_done_only_when_its_events_reached_every_destination() -> None:
    plan: list[Message] = [KYC, EXPIRED]
    found = {"n1": recorded(NotificationStatus.IMPORTED)}
    half = tally(plan, answers(), found, report(receipt("n1", "crm", 101.0)), sent=2, elapsed_s=1.0)
    assert (half.done, half.events_verified, half.events_expected) == (1, 1, 2)
    assert half.states == {"imported": 1, "refused": 1}
    assert not half.complete
    both = report(receipt("n1", "crm", 101.0), receipt("n1", "audit", 101.5))
    full = tally(plan, answers(), found, both, sent=2, elapsed_s=1.0)
    assert (full.done, full.events_verified, full.complete) == (2, 2, True)
    assert full.sink_unavailable == 3


def test_a_pending_notification_is_not_done() -> None:
    found = {"n1": recorded(NotificationStatus.PENDING)}
    current = tally([KYC], answers(), found, report(), sent=1, elapsed_s=0.5)
    assert (current.done, current.states, current.events_expected) == (0, {"pending": 1}, 0)


def test_a_duplicate_is_counted_as_such() -> None:
    current = tally([REPLAY], answers(), {}, report(), sent=1, elapsed_s=0.5)
    assert current.states == {"duplicate": 1}
    assert current.done == 1


def sample_tally(done: int, elapsed: float) -> Tally:
    return Tally(
        total=4,
        sent=4,
        done=done,
        states={"imported": 2, "refused": 1, "pending": 1},
        events_expected=4,
        events_verified=2,
        sink_unavailable=1,
        elapsed_s=elapsed,
    )


def test_the_line_shows_the_bar_and_the_counts_per_state() -> None:
    line = render(sample_tally(2, 1.5))
    assert line.startswith("[" + "#" * 12 + "-" * 12 + "]  50%")
    assert "refused 1  pending 1  imported 2" in line
    assert "events 2/4" in line
    assert "sink 503s 1" in line


def test_on_a_tty_the_line_is_redrawn_in_place() -> None:
    stream = io.StringIO()
    view = ProgressView(stream, tty=True)
    view.update(sample_tally(1, 0.1))
    view.update(sample_tally(2, 0.2))
    view.finish(sample_tally(4, 0.3))
    text = stream.getvalue()
    assert text.count("\r") == 3
    assert text.count("\n") == 1
    assert text.endswith("\n")


def test_without_a_tty_plain_lines_are_written_every_few_seconds() -> None:
    stream = io.StringIO()
    view = ProgressView(stream, tty=False)
    for step in range(11):  # 0.0 .. 5.0 s in half seconds
        view.update(sample_tally(1, step * 0.5))
    view.finish(sample_tally(4, 5.2))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 4  # at 0, 2 and 4 s, then the final line
    assert "100%" in lines[-1]


def test_table_aligns_columns() -> None:
    lines = table(["name", "n"], [["a", 1], ["longer", 100]])
    assert lines == ["name      n", "------  ---", "a         1", "longer  100"]


def facts(problems: list[str]) -> RunFacts:
    found = {
        "n1": Recorded(
            partner="acme",
            status=NotificationStatus.IMPORTED,
            reason=None,
            destinations=("crm", "audit"),
            event_ids=("evt_n1",),
            deliveries={
                ("evt_n1", "crm"): DeliveryRecord("delivered", 3),
                ("evt_n1", "audit"): DeliveryRecord("delivered", 1),
            },
            reconciles=1,
            event_times={"evt_n1": 100.05},
        )
    }
    sink = SinkReport(
        # crm was down at first: its receipt came later than audit's (and once more, retried)
        receipts=(
            receipt("n1", "audit", 100.15),
            receipt("n1", "crm", 100.75),
            receipt("n1", "crm", 101.5),
        ),
        requests={"crm": 3, "audit": 1},
        unavailable={"crm": 2},
        rejected={},
    )
    return RunFacts(
        plan=[KYC, EXPIRED, REPLAY],
        answers=answers(),
        recorded=found,
        sink=sink,
        upstream=Upstream(
            import_calls=2, faults={"ambiguous_drop": 1}, redemptions=1, double_redemptions=0
        ),
        destinations=("crm", "audit"),
        elapsed_s=3.0,
        problems=problems,
    )


def test_each_destination_has_its_own_latency_from_the_event_to_its_first_receipt() -> None:
    assert latencies_ms(facts([])) == {
        "crm": [pytest.approx(700.0)],
        "audit": [pytest.approx(100.0)],
    }
    assert end_to_end_ms(facts([])) == [pytest.approx(750.0)]  # the 202 to the last destination


def test_the_summary_reports_outcomes_deliveries_upstream_and_the_verdict() -> None:
    text = render_summary(facts([]))
    assert "OK in 3.0s: all 3 notifications reached their expected state" in text
    assert "refused at intake: 422 share_token_expired x1" in text
    crm = next(line for line in text.splitlines() if line.startswith("crm "))
    assert crm.split() == [
        "crm",
        "1",
        "3",
        "3",
        "2",
        "0",
        "1",
        "700",
        "ms",
        "700",
        "ms",
        "700",
        "ms",
    ]
    assert "End to end, from the 202 to the last destination's receipt: p50 750 ms" in text
    assert "rejected: Didit refused the token for good" in text  # the columns are explained
    assert text.rstrip().splitlines()[-2].startswith("Next: run it step by step with the sandbox")
    assert "2 import calls, faults injected: ambiguous_drop x1; 1 reconciliations" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split() == ["total", "3", "1", "1", "1", "1", "0", "0", "0", "2"]


def test_a_failed_run_lists_its_problems() -> None:
    text = render_summary(facts(["message #3: expected this, got that"]))
    assert "FAILED after 3.0s: 1 problem(s)" in text
    assert "  - message #3: expected this, got that" in text
    assert "OK in" not in text
