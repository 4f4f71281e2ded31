from __future__ import annotations

import pytest

from bridge.demo.plan import Message, Scenario
from bridge.demo.verdict import (
    Answer,
    DeliveryRecord,
    Recorded,
    answer_problem,
    delivery_problems,
    expected_deliveries,
    outcome_problem,
    percentile,
    reached,
)
from bridge.types import NotificationStatus
from tests.demo.helpers import plan_for

PLAN = plan_for(100)


def first(scenario: Scenario) -> Message:
    return next(m for m in PLAN if m.scenario is scenario)


def answer(status: int, code: str, notification_id: str | None = None) -> Answer:
    return Answer(http_status=status, code=code, notification_id=notification_id, at=0.0)


def recorded(
    status: NotificationStatus = NotificationStatus.IMPORTED,
    reason: str | None = None,
    *,
    event_ids: tuple[str, ...] = (),
    deliveries: dict[tuple[str, str], DeliveryRecord] | None = None,
) -> Recorded:
    return Recorded(
        partner="acme",
        status=status,
        reason=reason,
        destinations=("crm", "audit"),
        event_ids=event_ids,
        deliveries=deliveries,
    )


def test_the_expected_answer_passes() -> None:
    expired = first(Scenario.EXPIRED)
    assert answer_problem(expired, answer(422, "share_token_expired"), {}) is None


def test_another_answer_is_a_problem_naming_both() -> None:
    expired = first(Scenario.EXPIRED)
    problem = answer_problem(expired, answer(202, "accepted", "ntf_1"), {})
    assert problem is not None
    assert "expected 422 share_token_expired, got 202 accepted" in problem


def test_a_message_never_answered_is_a_problem() -> None:
    problem = answer_problem(first(Scenario.KYC), None, {})
    assert problem is not None
    assert "never answered" in problem


def test_a_duplicate_must_name_its_originals_notification() -> None:
    replay = first(Scenario.REPLAY)
    original = replay.expected.duplicate_of
    assert original is not None
    answers = {original: answer(202, "accepted", "ntf_original")}
    assert answer_problem(replay, answer(200, "duplicate", "ntf_original"), answers) is None
    problem = answer_problem(replay, answer(200, "duplicate", "ntf_other"), answers)
    assert problem is not None
    assert "not of message" in problem


def test_an_accepted_message_must_end_in_its_expected_outcome() -> None:
    kyc = first(Scenario.KYC)
    got = answer(202, "accepted", "ntf_1")
    assert outcome_problem(kyc, got, {"ntf_1": recorded()}) is None
    assert reached(kyc, got, {"ntf_1": recorded()})
    pending = {"ntf_1": recorded(NotificationStatus.PENDING)}
    problem = outcome_problem(kyc, got, pending)
    assert problem is not None
    assert "the bridge recorded pending" in problem
    assert not reached(kyc, got, pending)
    missing = outcome_problem(kyc, got, {})
    assert missing is not None
    assert "not stored" in missing


def test_a_rejection_must_carry_the_expected_reason() -> None:
    gone = first(Scenario.SOURCE_GONE)
    got = answer(202, "accepted", "ntf_2")
    right = {"ntf_2": recorded(NotificationStatus.REJECTED, "source_session_not_found")}
    wrong = {"ntf_2": recorded(NotificationStatus.REJECTED, "bad_request")}
    assert outcome_problem(gone, got, right) is None
    problem = outcome_problem(gone, got, wrong)
    assert problem is not None
    assert "rejected (bad_request)" in problem


def test_a_refusal_has_no_outcome_to_check_and_is_reached_once_answered() -> None:
    refused = first(Scenario.BAD_SIGNATURE)
    got = answer(401, "invalid_signature")
    assert outcome_problem(refused, got, {}) is None
    assert reached(refused, got, {})
    assert not reached(refused, None, {})


def delivered(event: str) -> dict[tuple[str, str], DeliveryRecord]:
    return {(event, d): DeliveryRecord("delivered", 1) for d in ("crm", "audit")}


def test_expected_deliveries_are_every_event_times_every_destination_of_final_ones() -> None:
    found = {
        "n1": recorded(event_ids=("evt_1",)),
        "n2": recorded(NotificationStatus.PENDING),
    }
    assert expected_deliveries(found) == {("evt_1", "crm"), ("evt_1", "audit")}


def test_deliveries_all_verified_pass() -> None:
    found = {"n1": recorded(event_ids=("evt_1",), deliveries=delivered("evt_1"))}
    verified = {("evt_1", "crm"), ("evt_1", "audit")}
    assert delivery_problems(found, verified, rejected_at_sink=1, forged_sent=1) == []


def test_an_event_missing_at_the_sink_is_a_problem() -> None:
    found = {"n1": recorded(event_ids=("evt_1",), deliveries=delivered("evt_1"))}
    problems = delivery_problems(found, {("evt_1", "crm")}, rejected_at_sink=0, forged_sent=0)
    assert problems == ["event evt_1 was never verified at audit"]


def test_an_unexpected_event_at_the_sink_is_a_problem() -> None:
    found = {"n1": recorded(event_ids=("evt_1",), deliveries=delivered("evt_1"))}
    verified = {("evt_1", "crm"), ("evt_1", "audit"), ("evt_x", "crm")}
    problems = delivery_problems(found, verified, rejected_at_sink=0, forged_sent=0)
    assert problems == ["the sink verified evt_x at crm, which was not expected"]


def test_a_delivery_the_bridge_does_not_count_as_delivered_is_a_problem() -> None:
    deliveries = delivered("evt_1") | {("evt_1", "crm"): DeliveryRecord("dead", 6)}
    found = {"n1": recorded(event_ids=("evt_1",), deliveries=deliveries)}
    verified = {("evt_1", "crm"), ("evt_1", "audit")}
    problems = delivery_problems(found, verified, rejected_at_sink=0, forged_sent=0)
    assert problems == ["delivery of evt_1 to crm is dead"]


def test_a_final_notification_without_exactly_one_event_is_a_problem() -> None:
    found = {"n1": recorded(event_ids=())}
    problems = delivery_problems(found, set(), rejected_at_sink=0, forged_sent=0)
    assert problems == ["notification n1 has 0 events, expected 1"]


def test_a_rejection_at_the_sink_beyond_the_forged_ones_is_a_problem() -> None:
    problems = delivery_problems({}, set(), rejected_at_sink=2, forged_sent=1)
    assert len(problems) == 1
    assert "rejected 2 deliveries" in problems[0]


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.5, 50.0), (0.95, 95.0), (0.99, 99.0), (1.0, 100.0), (0.0, 1.0)]
)
def test_percentile_is_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, fraction) == expected


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 0.5) is None
