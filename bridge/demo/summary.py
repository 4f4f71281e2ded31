"""The demo's closing report: outcomes per partner, deliveries per destination with their own
latency percentiles, the end-to-end latency, what happened upstream, the verdict, and what to do
next. Each table is followed by what its columns mean."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bridge.demo.plan import UNKNOWN_PARTNER, Message
from bridge.demo.verdict import Answer, Recorded, percentile
from bridge.sandbox.sink import Receipt, SinkReport


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """What the sandbox saw: import calls, the faults it injected, redemptions."""

    import_calls: int
    faults: Mapping[str, int]
    redemptions: int
    double_redemptions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFacts:
    plan: Sequence[Message]
    answers: Mapping[int, Answer]
    recorded: Mapping[str, Recorded]
    sink: SinkReport
    upstream: Upstream
    destinations: Sequence[str]
    elapsed_s: float
    problems: Sequence[str] = field(default_factory=tuple)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [line(cells[0]), rule, *(line(row) for row in cells[1:])]


def end_to_end_ms(facts: RunFacts) -> list[float]:
    """Per notification: from the 202 to the last destination's first verified receipt."""
    intake_at = {
        answer.notification_id: answer.at
        for answer in facts.answers.values()
        if answer.http_status == 202 and answer.notification_id
    }
    last: dict[str, float] = {}
    for (notification_id, _), at in _first_receipts(facts).items():
        if notification_id in intake_at:
            last[notification_id] = max(last.get(notification_id, at), at)
    return [(at - intake_at[notification_id]) * 1000 for notification_id, at in last.items()]


def latencies_ms(facts: RunFacts) -> dict[str, list[float]]:
    """Per destination: from the event's creation (the outcome recorded) to that destination's
    first verified receipt of it, in milliseconds: what the destination itself cost."""
    created = {
        event_id: at
        for found in facts.recorded.values()
        for event_id, at in found.event_times.items()
    }
    found: dict[str, list[float]] = {name: [] for name in facts.destinations}
    first: dict[tuple[str, str], float] = {}
    for receipt in facts.sink.receipts:
        key = (receipt.event_id, receipt.destination)
        first[key] = min(first.get(key, receipt.received_at), receipt.received_at)
    for (event_id, destination), at in first.items():
        if event_id in created:
            found.setdefault(destination, []).append((at - created[event_id]) * 1000)
    return found


def _first_receipts(facts: RunFacts) -> dict[tuple[str, str], float]:
    """(notification id, destination) -> the first verified receipt's time."""
    first: dict[tuple[str, str], float] = {}
    for receipt in facts.sink.receipts:
        if receipt.notification_id is not None:
            key = (receipt.notification_id, receipt.destination)
            first[key] = min(first.get(key, receipt.received_at), receipt.received_at)
    return first


def render(facts: RunFacts) -> str:
    lines = ["", "Outcomes per partner"]
    lines += _partner_table(facts)
    refusals = Counter(
        f"{answer.http_status} {answer.code}"
        for answer in facts.answers.values()
        if answer.http_status not in (200, 202)
    )
    if refusals:
        lines.append(
            "refused at intake: " + ", ".join(f"{k} x{n}" for k, n in sorted(refusals.items()))
        )
    lines += [
        "  accepted: answered 202 (stored); duplicate: answered 200 (a replay, or the same share",
        "  sent again); refused: a 4xx at intake (listed above). Of the accepted: imported;",
        "  rejected: Didit refused the token for good (e.g. its source session was deleted);",
        "  expired: the token ran out before its turn; failed: needs an operator.",
        "  events verified: events the sink received and verified, one per destination.",
        "",
        "Deliveries per destination (latency: from the event's creation to its verified receipt)",
    ]
    lines += _delivery_table(facts)
    total = end_to_end_ms(facts)
    lines += [
        "  attempts: POSTs the bridge made (retries included); requests: what the sink got;",
        "  503 (down): answers of a destination playing down for a while (the bridge retried);",
        "  rejected: requests the sink could not verify (the demo forges one on purpose).",
        f"End to end, from the 202 to the last destination's receipt: p50 "
        f"{_ms(percentile(total, 0.50))}, p95 {_ms(percentile(total, 0.95))}, "
        f"p99 {_ms(percentile(total, 0.99))}",
    ]
    up = facts.upstream
    faults = ", ".join(f"{name} x{n}" for name, n in sorted(up.faults.items())) or "none"
    reconciles = sum(found.reconciles for found in facts.recorded.values())
    lines += [
        "",
        f"Didit sandbox: {up.import_calls} import calls, faults injected: {faults}; "
        f"{reconciles} reconciliations; {up.redemptions} redemptions, "
        f"{up.double_redemptions} redeemed twice",
        "",
    ]
    if facts.problems:
        lines.append(f"FAILED after {facts.elapsed_s:.1f}s: {len(facts.problems)} problem(s)")
        lines += [f"  - {problem}" for problem in facts.problems[:40]]
        if len(facts.problems) > 40:
            lines.append(f"  ... and {len(facts.problems) - 40} more")
    else:
        events = sum(len(found.event_ids) for found in facts.recorded.values())
        lines.append(
            f"OK in {facts.elapsed_s:.1f}s: all {len(facts.plan)} notifications reached their "
            f"expected state; {events} events delivered to every destination and verified; "
            "no token redeemed twice"
        )
    lines += [
        "",
        'Next: run it step by step with the sandbox (README, "Try it with the sandbox"), then make',
        "config/bridge.example.yaml yours; `share-bridge demo --keep` keeps this run's files.",
    ]
    return "\n".join(lines) + "\n"


def _partner_table(facts: RunFacts) -> list[str]:
    by_message = {message.index: message for message in facts.plan}
    counts: dict[str, Counter[str]] = {}
    verified_by_notification = Counter(
        notification_id for notification_id, _ in {_pair(r) for r in facts.sink.receipts}
    )
    for index, answer in facts.answers.items():
        partner = by_message[index].partner
        row = counts.setdefault(partner, Counter())
        row["sent"] += 1
        if answer.http_status == 202:
            row["accepted"] += 1
            found = facts.recorded.get(answer.notification_id or "")
            if found is not None:
                row[found.status.value] += 1
            row["events verified"] += verified_by_notification[answer.notification_id]
        elif answer.http_status == 200:
            row["duplicate"] += 1
        else:
            row["refused"] += 1
    columns = ["sent", "accepted", "duplicate", "refused", "imported", "rejected", "expired"]
    columns += ["failed", "events verified"]
    order = sorted(counts, key=lambda name: (name == UNKNOWN_PARTNER, name))
    rows: list[list[object]] = [
        [
            name + (" (unknown)" if name == UNKNOWN_PARTNER else ""),
            *(counts[name][c] for c in columns),
        ]
        for name in order
    ]
    total: Counter[str] = sum(counts.values(), Counter())
    rows.append(["total", *(total[c] for c in columns)])
    return table(["partner", *columns], rows)


def _delivery_table(facts: RunFacts) -> list[str]:
    attempts: Counter[str] = Counter()
    deliveries: Counter[str] = Counter()
    for found in facts.recorded.values():
        for (_, destination), delivery in (found.deliveries or {}).items():
            deliveries[destination] += 1
            attempts[destination] += delivery.attempts
    verified = Counter(destination for _, destination in facts.sink.verified_pairs())
    latency = latencies_ms(facts)
    rows: list[list[object]] = []
    for name in facts.destinations:
        values = latency.get(name, [])
        rows.append(
            [
                name,
                deliveries[name],
                attempts[name],
                facts.sink.requests.get(name, 0),
                facts.sink.unavailable.get(name, 0),
                facts.sink.rejected.get(name, 0),
                verified[name],
                *(_ms(percentile(values, p)) for p in (0.50, 0.95, 0.99)),
            ]
        )
    header = ["destination", "deliveries", "attempts", "requests", "503 (down)", "rejected"]
    header += ["verified", "p50", "p95", "p99"]
    return table(header, rows)


def _pair(receipt: Receipt) -> tuple[str | None, str]:
    return receipt.notification_id, receipt.destination


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
