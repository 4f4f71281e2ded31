"""Every benchmark runs to its summary at a tiny size, so a benchmark that no longer works is
noticed by ``make test``, not by the next person who measures. No figure is asserted: the sizes
are far too small to mean anything, and the machine running the tests is not quiet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import CRASHED, discover

ROOT = Path(__file__).resolve().parents[2]

TINY: dict[str, list[str]] = {
    "console": ["--notifications", "200", "--requests", "3"],
    "deliveries": ["--rounds", "1", "--pending", "5", "--max-in-flight", "2"],
    "drain": ["--rounds", "1", "--backlog", "3", "--quota", "6000"],
    "edge": ["--rounds", "1", "--requests", "50"],
    "intake": [
        *("--rounds", "1", "--requests", "20", "--warmup", "5", "--connections", "2"),
        *("--telemetry", "--against", "HEAD"),  # the traced bridge and the before/after too
    ],
    "memory": ["--rounds", "1", "--pending", "20", "--settle-s", "0"],
    "metrics": ["--rows", "200", "--scrapes", "2"],
    "pg_claims": ["--rounds", "1", "--jobs", "10", "--lanes", "2"],
    "pg_drain": ["--rounds", "1", "--backlog", "3", "--quota", "6000"],
    "pg_intake": ["--rounds", "1", "--requests", "20", "--warmup", "5", "--connections", "2"],
    "sandbox_imports": ["--rounds", "1", "--imports", "8", "--connections", "2"],
}


def test_every_benchmark_has_a_smoke_size() -> None:
    assert set(TINY) == set(discover())


@pytest.mark.parametrize("name", sorted(TINY))
def test_benchmark_runs_to_its_summary(name: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "bench", name, *TINY[name]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = f"stdout:\n{finished.stdout}\nstderr:\n{finished.stderr}"
    # 0 met its target, 1 missed it: either way it ran to the end (a crash is CRASHED or worse).
    assert finished.returncode in (0, 1), report
    assert finished.returncode != CRASHED
    assert "Traceback" not in finished.stderr, report
    summary = finished.stdout.rstrip().splitlines()[-6:]
    assert any("ratio" in line for line in summary), report
