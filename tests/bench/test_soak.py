"""The soak's verdict: its logic on made-up series, and a short real run so it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak_verdict import WAL_FLOOR_BYTES, Sample, growth_check, verdict

ROOT = Path(__file__).parents[2]


def series(rss_kb: list[int], *, fds: int = 40, wal: int = 4 << 20) -> list[Sample]:
    return [
        Sample(
            at_s=60.0 * (minute + 1),
            rss_kb=rss,
            fds=fds,
            store_bytes={"bridge.db": 1 << 20, "bridge.db-wal": wal},
            queue=0,
            sent=100 * minute,
        )
        for minute, rss in enumerate(rss_kb)
    ]


def checks_of(samples: list[Sample], **overrides: object) -> dict[str, bool]:
    arguments: dict[str, object] = {
        "duration_s": 60.0 * len(samples),
        "problems": [],
        "double_redemptions": 0,
        "redemptions": 5,
        "imported": 5,
    }
    arguments.update(overrides)
    return {check.name: check.ok for check in verdict(samples, **arguments)}  # type: ignore[arg-type]


def test_a_flat_run_passes_every_check() -> None:
    assert all(checks_of(series([80_000, 86_000, 84_000, 85_000, 86_500, 85_500])).values())


def test_memory_that_keeps_growing_after_the_warm_up_fails() -> None:
    checks = checks_of(series([80_000 + 3_000 * minute for minute in range(12)]))
    assert checks == {**checks, "resident memory flat": False}
    assert sum(not ok for ok in checks.values()) == 1


def test_the_warm_up_is_ten_minutes_of_an_hour() -> None:
    # Fast growth in the first ten minutes of an hour is start-up; flat after that passes.
    rss = [40_000 + 5_000 * minute for minute in range(10)] + [90_000] * 50
    assert checks_of(series(rss))["resident memory flat"]
    assert not checks_of(series([*rss[:-1], 99_500]))["resident memory flat"]


def test_a_wal_below_one_checkpoint_is_flat_and_one_beyond_it_is_not() -> None:
    small = series([80_000] * 6, wal=0)[:3] + series([80_000] * 6, wal=WAL_FLOOR_BYTES)[3:]
    assert checks_of(small)["WAL flat"]
    grown = series([80_000] * 6, wal=WAL_FLOOR_BYTES)[:3] + series([80_000] * 6, wal=8 << 20)[3:]
    assert not checks_of(grown)["WAL flat"]


def test_too_few_samples_is_no_pass() -> None:
    check = growth_check("x", series([80_000]), lambda s: s.rss_kb, warmup=600)
    assert not check.ok
    assert "too few samples" in check.detail


@pytest.mark.parametrize(
    ("overrides", "failed"),
    [
        (
            {"problems": ["batch 0: message #3 was never answered"]},
            "every message ended as expected",
        ),
        ({"double_redemptions": 1}, "none redeemed twice"),
        ({"redemptions": 6}, "none redeemed twice"),
    ],
)
def test_a_lost_or_doubled_share_fails(overrides: dict[str, object], failed: str) -> None:
    checks = checks_of(series([80_000] * 6), **overrides)
    assert [name for name, ok in checks.items() if not ok] == [failed]


def test_a_share_still_queued_at_the_end_fails() -> None:
    samples = series([80_000] * 6)
    samples[-1] = Sample(
        at_s=samples[-1].at_s, rss_kb=80_000, fds=40, store_bytes={}, queue=2, sent=500
    )
    assert not checks_of(samples)["every share final, every event delivered"]


SAMPLE_LINE = re.compile(r"^\[ *([\d.]+) min\] rss +([\d.]+) MiB +fds +(\d+) ")
CHECK_LINE = re.compile(r"^  (ok  |FAIL) ([^:]+): (.*)$")


@pytest.mark.e2e
def test_a_short_soak_runs_and_judges_what_it_measured() -> None:
    """About 20 s of real traffic: the sandbox, a sink and ``bridge serve`` as processes."""
    run = subprocess.run(
        [sys.executable, "-m", "bench", "soak", "--minutes", "0.3", "--sample-s", "2.5"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = run.stdout.splitlines()
    samples = [match.groups() for line in lines if (match := SAMPLE_LINE.match(line))]
    checks = {m[2]: (m[1] == "ok  ", m[3]) for line in lines if (m := CHECK_LINE.match(line))}
    assert len(samples) >= 6, run.stdout + run.stderr
    assert len(checks) == 6, run.stdout + run.stderr
    for name in (
        "every share final, every event delivered",
        "every message ended as expected",
        "none redeemed twice",
    ):
        assert checks[name][0], f"{name}: {checks[name][1]}\n{run.stdout}"
    # The flatness checks judge the printed samples: each names a peak that was measured.
    memory_peak = re.search(r"at most ([\d.]+) MiB after", checks["resident memory flat"][1])
    fds_peak = re.search(r"at most (\d+) after", checks["open descriptors flat"][1])
    assert memory_peak is not None
    assert fds_peak is not None
    assert memory_peak.group(1) in {rss for _, rss, _ in samples}
    assert fds_peak.group(1) in {fds for _, _, fds in samples}
    assert ("verdict: PASS" in lines) == all(ok for ok, _ in checks.values())
    assert run.returncode == (0 if "verdict: PASS" in lines else 1)
