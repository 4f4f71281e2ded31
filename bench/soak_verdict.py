"""The soak's samples and its verdict: pure functions over what ``bench.soak`` measured.

Flatness compares envelopes, not single readings: the highest value seen after the warm-up
against the highest seen during it. A reading taken while a burst of requests holds extra
connections or buffers is noise both windows contain; a leak keeps raising the later maximum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

MAX_GROWTH = 0.10
#: The longest warm-up: resident memory settles (imports, caches, SQLite pages) in minutes.
WARMUP_S = 600.0
#: A WAL up to this size is flat by design: SQLite checkpoints it every 1000 pages (of 4 KiB, each
#: with a 24-byte frame header, after a 32-byte file header) and then reuses the file from its
#: start without shrinking it, so it plateaus here. It may also read 0 right after a truncating
#: checkpoint, which would make any later page look like infinite growth.
WAL_FLOOR_BYTES = 1000 * (4096 + 24) + 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One reading of ``bridge serve`` and its store, ``at_s`` seconds into the run."""

    at_s: float
    rss_kb: int
    fds: int
    store_bytes: Mapping[str, int]  # file name -> size: the database, its -wal and -shm
    queue: int  # notifications not final yet, plus deliveries not delivered yet
    outcomes: Mapping[str, int] = field(default_factory=dict)  # notification status -> count
    sent: int = 0  # messages partners sent so far

    @property
    def wal_bytes(self) -> int:
        return sum(size for name, size in self.store_bytes.items() if name.endswith("-wal"))

    def line(self) -> str:
        files = "  ".join(
            f"{name} {_size(size)}" for name, size in sorted(self.store_bytes.items())
        )
        outcomes = " ".join(f"{status} {count}" for status, count in sorted(self.outcomes.items()))
        return (
            f"[{self.at_s / 60:7.2f} min] rss {self.rss_kb / 1024:6.1f} MiB  fds {self.fds:3d}  "
            f"{files}  queue {self.queue}  sent {self.sent}  {outcomes}"
        )


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"  {'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def warmup_s(duration_s: float) -> float:
    """Ten minutes, or half of a shorter run (so a short run still has a later window)."""
    return min(WARMUP_S, duration_s / 2)


def growth_check(
    name: str,
    samples: Sequence[Sample],
    value: Callable[[Sample], float],
    *,
    warmup: float,
    floor: float = 0.0,
    unit: Callable[[float], str] = str,
) -> Check:
    """``value`` is flat: its maximum after ``warmup`` seconds exceeds its maximum during the
    warm-up (at least ``floor``) by less than ``MAX_GROWTH``."""
    early = [value(sample) for sample in samples if sample.at_s <= warmup]
    late = [value(sample) for sample in samples if sample.at_s > warmup]
    if not early or not late:
        return Check(name, False, f"too few samples ({len(early)} before, {len(late)} after)")
    reference = max(max(early), floor)
    peak = max(late)
    growth = peak / reference - 1 if reference > 0 else 0.0
    detail = (
        f"{unit(max(early))} by {warmup / 60:.1f} min, at most {unit(peak)} after: "
        f"{growth:+.1%} (limit {MAX_GROWTH:.0%})"
    )
    return Check(name, growth < MAX_GROWTH, detail)


def verdict(
    samples: Sequence[Sample],
    *,
    duration_s: float,
    problems: Sequence[str],
    double_redemptions: int,
    redemptions: int,
    imported: int,
) -> list[Check]:
    """Every check of the soak, in the order they are printed."""
    last = samples[-1] if samples else None
    unsettled = last.queue if last is not None else -1
    shown = "; ".join(problems[:5]) + (
        f"; ... {len(problems) - 5} more" if len(problems) > 5 else ""
    )
    warmup = warmup_s(duration_s)
    return [
        Check(
            "every share final, every event delivered",
            unsettled == 0,
            f"{unsettled} still queued at the end",
        ),
        Check(
            "every message ended as expected",
            not problems,
            shown or f"{last.sent if last else 0} messages checked",
        ),
        Check(
            "none redeemed twice",
            double_redemptions == 0 and redemptions == imported,
            f"{double_redemptions} double redemption(s); the sandbox redeemed {redemptions}, "
            f"the bridge recorded {imported} imports",
        ),
        growth_check(
            "resident memory flat",
            samples,
            lambda s: s.rss_kb,
            warmup=warmup,
            unit=lambda kb: f"{kb / 1024:.1f} MiB",
        ),
        growth_check("open descriptors flat", samples, lambda s: s.fds, warmup=warmup, unit=_count),
        growth_check(
            "WAL flat",
            samples,
            lambda s: s.wal_bytes,
            warmup=warmup,
            floor=WAL_FLOOR_BYTES,
            unit=_size,
        ),
    ]


def _count(value: float) -> str:
    return f"{value:.0f}"


def _size(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} B"
    if size < 1 << 20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1 << 20):.1f} MiB"
