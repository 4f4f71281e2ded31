"""`bridge demo` for real: the sandbox and the bridge as processes, the sink on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.demo.plan import mix_for

COUNT = 80


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the demo keeps its temporary files
    return subprocess.run(
        [sys.executable, "-m", "bridge", "demo", "--count", str(COUNT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def row(output: str, name: str, columns: int) -> list[int]:
    """The first ``columns`` numbers of the table row starting with ``name``."""
    line = next(line for line in output.splitlines() if line.startswith(name))
    return [int(cell) for cell in line.split()[1 : columns + 1]]


@pytest.mark.e2e
def test_the_demo_passes_with_the_expected_counts_and_cleans_up(tmp_path: Path) -> None:
    result = run_demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    mix = mix_for(COUNT)
    originals = sum(mix.originals.values())
    accepted = originals + mix.source_gone
    refused = mix.expired + mix.foreign + mix.unknown_partner + mix.bad_signature + mix.malformed
    # sent, accepted, duplicate, refused, imported, rejected, expired, failed, events verified
    expected = [COUNT, accepted, mix.replays + mix.resent, refused]
    expected += [originals, mix.source_gone, 0, 0, 2 * accepted]
    assert row(result.stdout, "total", 9) == expected
    assert "OK in" in result.stdout
    assert "0 redeemed twice" in result.stdout
    crm, audit = row(result.stdout, "crm ", 6), row(result.stdout, "audit ", 6)
    # deliveries, attempts, requests, 503 (down), rejected, verified
    assert crm[0] == audit[0] == accepted
    assert crm[3] == 30
    assert crm[1] >= accepted + 30
    assert audit[4] == 1  # the demo's own forged delivery, and nothing else
    assert crm[5] == audit[5] == accepted
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone


@pytest.mark.e2e
def test_a_run_that_cannot_finish_in_time_fails_with_exit_1(tmp_path: Path) -> None:
    result = run_demo(tmp_path, "--timeout", "0.1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "timed out after" in result.stdout
    assert "FAILED after" in result.stdout
    assert list(tmp_path.iterdir()) == []
