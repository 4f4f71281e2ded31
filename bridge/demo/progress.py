"""Live progress: how many messages reached their expected end state, and the count per state.

On a terminal one line is redrawn in place (``\\r``); otherwise (a pipe, CI) a plain line is
written every few seconds, so logs stay readable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from bridge.demo.plan import Message
from bridge.demo.verdict import FINAL, Answer, Recorded, reached
from bridge.sandbox.sink import SinkReport

BAR_WIDTH = 24
PLAIN_INTERVAL_S = 2.0
#: The order states are shown in: the intake's answers, then the bridge's statuses.
STATES: tuple[str, ...] = (
    "refused",
    "duplicate",
    "pending",
    "imported",
    "rejected",
    "expired",
    "failed",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """Where the run stands."""

    total: int
    sent: int
    done: int  # in the expected end state, events verified at the sink
    states: Mapping[str, int]
    events_expected: int  # (event, destination) pairs of final notifications
    events_verified: int
    sink_unavailable: int  # the 503s the sink was told to give
    elapsed_s: float

    @property
    def complete(self) -> bool:
        return self.done == self.total


def tally(
    plan: Sequence[Message],
    answers: Mapping[int, Answer],
    recorded: Mapping[str, Recorded],
    sink: SinkReport,
    *,
    sent: int,
    elapsed_s: float,
) -> Tally:
    """Count each message's state, and whether it is done."""
    delivered_to = {(receipt.notification_id, receipt.destination) for receipt in sink.receipts}
    states: Counter[str] = Counter()
    done = events_expected = events_verified = 0
    for message in plan:
        answer = answers.get(message.index)
        if answer is None:
            continue
        found = recorded.get(answer.notification_id or "") if answer.http_status == 202 else None
        if found is None:
            states["duplicate" if answer.http_status == 200 else "refused"] += 1
            done += reached(message, answer, recorded)
            continue
        states[found.status.value] += 1
        if found.status not in FINAL:
            continue
        verified = sum((answer.notification_id, d) in delivered_to for d in found.destinations)
        events_expected += len(found.destinations)
        events_verified += verified
        done += reached(message, answer, recorded) and verified == len(found.destinations)
    return Tally(
        total=len(plan),
        sent=sent,
        done=done,
        states=dict(states),
        events_expected=events_expected,
        events_verified=events_verified,
        sink_unavailable=sum(sink.unavailable.values()),
        elapsed_s=elapsed_s,
    )


def render(t: Tally) -> str:
    """``[#####-----]  52%  sent 300/300  refused 13 ...  events 210/404  sink 503s 30  7.1s``"""
    fraction = t.done / t.total if t.total else 1.0
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    states = "  ".join(f"{name} {t.states[name]}" for name in STATES if t.states.get(name))
    return (
        f"[{bar}] {fraction:4.0%}  sent {t.sent}/{t.total}  {states}  "
        f"events {t.events_verified}/{t.events_expected}  sink 503s {t.sink_unavailable}  "
        f"{t.elapsed_s:4.1f}s"
    )


class ProgressView:
    """Writes tallies to ``stream``: redrawn in place on a TTY, periodic lines otherwise."""

    def __init__(self, stream: TextIO, *, tty: bool) -> None:
        self._stream = stream
        self._tty = tty
        self._last_plain: float | None = None
        self._width = 0

    def update(self, t: Tally) -> None:
        line = render(t)
        if self._tty:
            padding = " " * max(self._width - len(line), 0)
            self._width = len(line)
            self._stream.write(f"\r{line}{padding}")
        elif self._last_plain is None or t.elapsed_s - self._last_plain >= PLAIN_INTERVAL_S:
            self._last_plain = t.elapsed_s
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self, t: Tally) -> None:
        """The final state, on a line of its own."""
        line = render(t)
        if self._tty:
            padding = " " * max(self._width - len(line), 0)
            self._stream.write(f"\r{line}{padding}\n")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
