"""Did the run do what it must? Each message against its expected state, the events against what
the sink verified, and the sandbox's ledger against double redemption."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from bridge.demo.plan import Message
from bridge.types import NotificationStatus

FINAL = frozenset(
    {
        NotificationStatus.IMPORTED,
        NotificationStatus.REJECTED,
        NotificationStatus.EXPIRED,
        NotificationStatus.FAILED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """The bridge's answer to one message, as the partner saw it."""

    http_status: int  # 0 when no answer came (a transport error)
    code: str  # "accepted", "duplicate", the error code, or what went wrong
    notification_id: str | None
    at: float  # when the answer arrived (for a 202: the intake time)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    status: str
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Recorded:
    """What the bridge's store says about one notification (events and deliveries only when
    read with its timeline)."""

    partner: str
    status: NotificationStatus
    reason: str | None
    destinations: tuple[str, ...]
    event_ids: tuple[str, ...] = ()
    deliveries: Mapping[tuple[str, str], DeliveryRecord] | None = None  # by (event, destination)
    reconciles: int = 0
    event_times: Mapping[str, float] = field(default_factory=dict)  # event id -> created at


def answer_problem(
    message: Message, answer: Answer | None, answers: Mapping[int, Answer]
) -> str | None:
    """Why the intake answer is not the expected one, or None."""
    expected = message.expected
    if answer is None:
        return f"message #{message.index} ({message.scenario}) was never answered"
    if (answer.http_status, answer.code) != (expected.http_status, expected.answer):
        return (
            f"message #{message.index} ({message.scenario}): expected {expected.http_status} "
            f"{expected.answer}, got {answer.http_status} {answer.code}"
        )
    if expected.duplicate_of is not None:
        original = answers.get(expected.duplicate_of)
        if original is None or original.notification_id != answer.notification_id:
            return (
                f"message #{message.index} ({message.scenario}) answered duplicate of "
                f"{answer.notification_id}, not of message #{expected.duplicate_of}'s notification"
            )
    return None


def outcome_problem(
    message: Message, answer: Answer | None, recorded: Mapping[str, Recorded]
) -> str | None:
    """Why an accepted message's recorded outcome is not the expected one, or None."""
    expected = message.expected
    if expected.outcome is None or answer is None or answer.notification_id is None:
        return None
    found = recorded.get(answer.notification_id)
    if found is None:
        return f"message #{message.index}: notification {answer.notification_id} is not stored"
    if (found.status, found.reason) != (expected.outcome, expected.reason):
        got = found.status.value + (f" ({found.reason})" if found.reason else "")
        return (
            f"message #{message.index} ({message.scenario}): expected "
            f"{expected.describe()}, the bridge recorded {got}"
        )
    return None


def reached(message: Message, answer: Answer | None, recorded: Mapping[str, Recorded]) -> bool:
    """Whether the message is in its expected end state (its events aside)."""
    if answer is None:
        return False
    if message.expected.outcome is None:
        return answer.http_status == message.expected.http_status
    return outcome_problem(message, answer, recorded) is None


def expected_deliveries(recorded: Mapping[str, Recorded]) -> set[tuple[str, str]]:
    """(event id, destination) for every event of a final notification and every destination
    of its rule (every demo destination subscribes to every event type)."""
    return {
        (event_id, destination)
        for found in recorded.values()
        if found.status in FINAL
        for event_id in found.event_ids
        for destination in found.destinations
    }


def delivery_problems(
    recorded: Mapping[str, Recorded],
    verified: Collection[tuple[str, str]],
    *,
    rejected_at_sink: int,
    forged_sent: int,
) -> list[str]:
    """The events the sink should have verified and did not, the ones it verified and should
    not have, deliveries the bridge does not count as delivered, and verification failures."""
    problems: list[str] = []
    for notification_id, found in sorted(recorded.items()):
        if found.status in FINAL and len(found.event_ids) != 1:
            problems.append(
                f"notification {notification_id} has {len(found.event_ids)} events, expected 1"
            )
        for (event_id, destination), delivery in sorted((found.deliveries or {}).items()):
            if delivery.status != "delivered":
                problems.append(f"delivery of {event_id} to {destination} is {delivery.status}")
    expected = expected_deliveries(recorded)
    verified_set = set(verified)
    for event_id, destination in sorted(expected - verified_set):
        problems.append(f"event {event_id} was never verified at {destination}")
    for event_id, destination in sorted(verified_set - expected):
        problems.append(f"the sink verified {event_id} at {destination}, which was not expected")
    if rejected_at_sink != forged_sent:
        problems.append(
            f"the sink rejected {rejected_at_sink} deliveries; only the {forged_sent} forged "
            "one(s) should have failed verification"
        )
    return problems


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` in 0..1), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]
