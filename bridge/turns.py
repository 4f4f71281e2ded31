"""Whose import goes next: Didit's quota shared between partners (lanes).

The same policy as the store's import claim, for the imports already claimed and waiting for
the pacer (the claim picks which imports wait; this picks which of them is sent):

- each lane's most urgent import (earliest deadline, then first come) is its candidate;
- the lane served longest ago (never served: first) goes next, so turns go round the lanes;
- except that a candidate whose deadline is at risk goes first, most urgent first. At risk:
  its deadline is closer than its place in the round takes at the current pace
  (``deadline - now < place * pace_s``). A lane slowed for rejected tokens (``no_jumps``) never
  goes ahead, nor does the lane served last: urgency never buys a lane two turns in a row, so
  a partner sending tokens that all look urgent (their ``exp`` is not verified) still gets at
  most every other turn.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Waiting:
    """One import waiting for its turn."""

    lane: Hashable  # the partner (None: imports without one share a lane)
    deadline: float  # epoch seconds; math.inf for none
    arrival: int  # first come, first served among equal deadlines


def next_turn(
    waiting: Sequence[Waiting],
    *,
    served_at: Mapping[Hashable, float],
    now: float,
    pace_s: float,
    no_jumps: Collection[Hashable] = (),
) -> Waiting:
    """The import to send next (``waiting`` must not be empty); ``served_at``: each lane's
    last send (the lanes at the latest of them were served last)."""
    heads: dict[Hashable, Waiting] = {}
    for candidate in waiting:
        head = heads.get(candidate.lane)
        if head is None or (candidate.deadline, candidate.arrival) < (head.deadline, head.arrival):
            heads[candidate.lane] = candidate
    round_ = sorted(
        heads.values(),
        key=lambda w: (served_at.get(w.lane, -math.inf), w.deadline, w.arrival),
    )
    latest = max(served_at.values(), default=None)
    last = {lane for lane, at in served_at.items() if at == latest}
    at_risk = [
        w
        for place, w in enumerate(round_, start=1)
        if w.lane not in last and w.lane not in no_jumps and w.deadline - now < place * pace_s
    ]
    if at_risk:
        return min(at_risk, key=lambda w: (w.deadline, w.arrival))
    return round_[0]
