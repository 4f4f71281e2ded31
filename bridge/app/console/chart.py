"""The overview's chart: outcomes per time bucket as stacked bars, laid out for an SVG drawn by
the server (no script draws it, so the strict CSP holds and a phone renders it as is)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bridge.app.operations import OutcomeChart
from bridge.types import NotificationStatus

__all__ = ["HEIGHT", "WIDTH", "Bar", "bars"]

WIDTH: Final = 480
HEIGHT: Final = 120
_GAP: Final = 2


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    status: NotificationStatus
    count: int
    bucket: int


def bars(chart: OutcomeChart) -> list[Bar]:
    """One rectangle per (bucket, status) with a count, stacked, scaled to the busiest bucket."""
    buckets = len(next(iter(chart.counts.values()), []))
    if buckets == 0:
        return []
    per_bucket = [sum(row[i] for row in chart.counts.values()) for i in range(buckets)]
    tallest = max(per_bucket) or 1
    slot = WIDTH / buckets
    drawn = []
    for i in range(buckets):
        top = float(HEIGHT)
        for status, row in chart.counts.items():
            if row[i] == 0:
                continue
            height = HEIGHT * row[i] / tallest
            top -= height
            drawn.append(
                Bar(
                    x=round(i * slot + _GAP / 2, 1),
                    y=round(top, 1),
                    width=round(slot - _GAP, 1),
                    height=round(height, 1),
                    status=status,
                    count=row[i],
                    bucket=i,
                )
            )
    return drawn
