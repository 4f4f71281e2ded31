"""What happened: every Didit call, every redemption, every webhook sent."""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

#: Calls kept for reading; the redemption ledger is never truncated.
CALL_LEDGER_SIZE = 200_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    seq: int
    at: float  # epoch seconds when the call arrived
    method: str
    path: str
    endpoint: str  # import | share | list | decision | redirect | unknown
    application_id: str | None
    status: int | None  # what went on the wire; None when nothing did (dropped, client gone)
    handler_status: int | None  # what the endpoint produced, when it ran (e.g. 201 behind a 504)
    latency_ms: float
    fault: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Redemption:
    seq: int
    at: float
    source_session_id: str
    source_application_id: str
    receiving_application_id: str
    new_session_id: str
    session_kind: str
    workflow_id: str
    vendor_data: str | None
    trust_review: bool
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookDelivery:
    seq: int
    at: float
    application_id: str
    session_id: str
    status: str
    url: str
    response_status: int | None
    error: str | None  # the exception's type when the POST failed


def as_dict(record: CallRecord | Redemption | WebhookDelivery) -> dict[str, Any]:
    return dataclasses.asdict(record)


class Ledger:
    def __init__(self) -> None:
        self.calls: deque[CallRecord] = deque(maxlen=CALL_LEDGER_SIZE)
        self.calls_total = 0
        self.redemptions: list[Redemption] = []
        self.webhooks: list[WebhookDelivery] = []

    def record_call(
        self,
        *,
        at: float,
        method: str,
        path: str,
        endpoint: str,
        application_id: str | None,
        status: int | None,
        handler_status: int | None,
        latency_ms: float,
        fault: str | None,
    ) -> None:
        self.calls_total += 1
        self.calls.append(
            CallRecord(
                seq=self.calls_total,
                at=at,
                method=method,
                path=path,
                endpoint=endpoint,
                application_id=application_id,
                status=status,
                handler_status=handler_status,
                latency_ms=latency_ms,
                fault=fault,
            )
        )

    def add_redemption(self, redemption: Redemption) -> None:
        self.redemptions.append(redemption)

    def add_webhook(self, delivery: WebhookDelivery) -> None:
        self.webhooks.append(delivery)

    def double_redemptions(self) -> list[dict[str, Any]]:
        """Every (source session, receiving application) redeemed more than once: always empty
        unless the single-redemption check failed."""
        counts = Counter(
            (r.source_session_id, r.receiving_application_id) for r in self.redemptions
        )
        return [
            {
                "source_session_id": source,
                "receiving_application_id": receiver,
                "count": count,
                "new_session_ids": [
                    r.new_session_id
                    for r in self.redemptions
                    if (r.source_session_id, r.receiving_application_id) == (source, receiver)
                ],
            }
            for (source, receiver), count in counts.items()
            if count > 1
        ]
