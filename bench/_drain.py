"""What the drain benchmarks share: a backlog sent at once to the bridge(s) under test, drained
against the sandbox's write quota, and the rate read from the sandbox's ledger.

``bridge sandbox`` (its quota: ``--quota`` writes per API key in any 60 s, as Didit counts) runs
as a real process; each round ``start`` brings up the bridge(s) with ``rate_limit_per_minute``
set to the same quota, the backlog (one share token per fresh source session) is sent to their
intake at once, and the round waits until every notification is final. The rate is imports over
the span from the first import call to the last plus one interval at the quota's pace; the
baseline is the quota itself.

Targets: at least 95 % of the quota, zero 429s, every notification imported, no source session
redeemed twice.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._bridge_harness import intake_request, note, partner_body, run_load
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.process import start_sandbox_process
from tests.support.waiting import wait_until

TARGET_SHARE = 0.95
QUOTA_PER_MINUTE = 600
CLIENT_CPU = 1
CONNECTIONS = 16


@dataclass(frozen=True, slots=True)
class Bridges:
    """The bridge(s) of one round: their ports, and their store's notifications by status."""

    ports: list[int]
    statuses: Callable[[], dict[str, int]]


#: ``start(folder, config)`` -> the running bridges; ``config`` holds ``bridge_config``'s
#: keyword arguments for the sandbox (Didit URL, key, ids, pace, ``max_in_flight``).
Start = Callable[[Path, dict[str, Any]], AbstractContextManager[Bridges]]


@dataclass(frozen=True, slots=True)
class Round:
    imported: int
    span_s: float
    per_minute: float
    share: float  # of the quota
    statuses: dict[int, int]
    throttled: int
    doubles: int

    @property
    def ok(self) -> bool:
        return self.throttled == 0 and self.doubles == 0


def main(prog: str, description: str, argv: Sequence[str], start: Start, bridge: str) -> int:
    """A drain benchmark's ``main``: ``bridge`` says in the summary what ``start`` runs."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--quota", type=int, default=QUOTA_PER_MINUTE, help="writes per minute")
    args = parser.parse_args(list(argv))

    shares: list[float] = []
    ok = True
    extra = ["--write-limit", str(args.quota)]
    with start_sandbox_process(seed=4, extra_args=extra) as (base_url, _):
        control = SandboxControl(base_url, timeout_s=120)
        try:
            for number in range(1, args.rounds + 1):
                control.reset()
                control.set_quota(write_limit=args.quota, read_limit=10 * args.quota)
                result = _round(control, args.backlog, args.quota, start)
                shares.append(result.share)
                ok = ok and result.ok
                note(
                    f"round {number}: {result.imported}/{args.backlog} imported in "
                    f"{result.span_s:.1f} s = {result.per_minute:.1f}/min "
                    f"({result.share:.1%} of {args.quota}/min); import calls "
                    f"{result.statuses}; 429s {result.throttled}; "
                    f"double redemptions {result.doubles}"
                )
        finally:
            control.close()
    share = statistics.median(shares)
    met = share >= TARGET_SHARE and ok
    note(
        f"drain of {args.backlog} at a quota of {args.quota}/min ({bridge}), median of "
        f"{args.rounds} round(s):\n"
        f"  bridge   {share * args.quota:8.1f} imports/min\n"
        f"  baseline {args.quota:8d} imports/min (the quota)\n"
        f"  ratio    {share:8.3f}\n"
        f"  target   >= {TARGET_SHARE:.0%} with zero 429s: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


def _round(control: SandboxControl, backlog: int, quota: int, start: Start) -> Round:
    ours, acme = control.application("ours"), control.application("acme")
    workflow = next(w for w in ours["workflows"] if w["kind"] == "KYC")["workflow_id"]
    tokens = control.bulk_tokens(acme["application_id"], ours["application_id"], backlog)
    config = {
        "didit_base_url": control.base_url,
        "didit_api_key": ours["api_key"],
        "application_id": ours["application_id"],
        "workflow_id": workflow,
        "rate_limit_per_minute": quota,
        "max_in_flight": 8,
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench-drain-") as folder,
        start(Path(folder), config) as bridges,
    ):
        requests = functools.partial(_requests, tokens)
        sent = run_load(bridges.ports, requests, backlog, CONNECTIONS, CLIENT_CPU)
        if sent.statuses != {202: backlog}:
            raise RuntimeError(f"intake answered {sent.statuses}, expected only 202")
        with contextlib.suppress(TimeoutError):  # the round reports what was imported
            wait_until(
                lambda: bridges.statuses().get("pending", 0),
                "the backlog drained",
                holds=lambda pending: pending == 0,
                timeout_s=3 * 60 * backlog / quota + 60,
                poll_s=0.5,
            )
        statuses = bridges.statuses()
    calls = [c for c in control.calls() if c["endpoint"] == "import"]
    arrivals = sorted(c["at"] for c in calls if c["status"] == 201)
    span = arrivals[-1] - arrivals[0] + 60 / quota if arrivals else float("inf")
    per_minute = 60 * len(arrivals) / span
    throttled = sum(1 for c in calls if c["status"] == 429)
    doubles = len(control.double_redemptions())
    imported = statuses.get("imported", 0)
    return Round(
        imported=imported,
        span_s=span,
        per_minute=per_minute,
        share=per_minute / quota if imported == backlog else 0.0,
        statuses=dict(Counter(c["status"] for c in calls)),
        throttled=throttled,
        doubles=doubles,
    )


def _requests(tokens: list[str], count: int) -> list[bytes]:
    return [intake_request(partner_body(n, tokens[n])) for n in range(count)]
