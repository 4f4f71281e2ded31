"""Drain: a backlog of 1,000 against a sandbox quota of 600 writes a minute.

``bridge sandbox`` (quota: 600 writes per API key in any 60 s, as Didit counts) and ``bridge
serve`` (``rate_limit_per_minute: 600``) run as real processes on 127.0.0.1. 1,000 share
tokens, each for its own source session, are sent to intake at once; the bench then waits until
every notification is final and reads the sandbox's ledgers. The rate is imports over the span
from the first import call to the last plus one interval at the quota's pace; the baseline is
the quota itself. It takes about 100 s a round (one round by default).

Targets: at least 95 % of the quota, zero 429s, every notification imported, no source session
redeemed twice.
"""

from __future__ import annotations

import argparse
import functools
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._bridge_harness import (
    bridge_config,
    bridge_serve,
    free_port,
    intake_request,
    note,
    partner_body,
    run_load,
)
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.process import start_sandbox_process

TARGET_SHARE = 0.95
QUOTA_PER_MINUTE = 600
CLIENT_CPU = 1


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench drain", description=__doc__)
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
                result = _round(control, args.backlog, args.quota)
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
        f"drain of {args.backlog} at a quota of {args.quota}/min, median of {args.rounds} "
        f"round(s):\n"
        f"  bridge   {share * args.quota:8.1f} imports/min\n"
        f"  baseline {args.quota:8d} imports/min (the quota)\n"
        f"  ratio    {share:8.3f}\n"
        f"  target   >= {TARGET_SHARE:.0%} with zero 429s: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


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


def _round(control: SandboxControl, backlog: int, quota: int) -> Round:
    ours, acme = control.application("ours"), control.application("acme")
    workflow = next(w for w in ours["workflows"] if w["kind"] == "KYC")["workflow_id"]
    tokens = control.bulk_tokens(acme["application_id"], ours["application_id"], backlog)
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as folder:
        port = free_port()
        config = bridge_config(
            Path(folder),
            port=port,
            didit_base_url=control.base_url,
            didit_api_key=ours["api_key"],
            application_id=ours["application_id"],
            workflow_id=workflow,
            rate_limit_per_minute=quota,
            max_in_flight=8,
        )
        with bridge_serve(config, port) as bridge:
            sent = run_load(port, functools.partial(_requests, tokens), backlog, 16, CLIENT_CPU)
            if sent.statuses != {202: backlog}:
                raise RuntimeError(f"intake answered {sent.statuses}, expected only 202")
            give_up = time.monotonic() + 3 * 60 * backlog / quota + 60
            while _pending(bridge.db_path) and time.monotonic() < give_up:
                time.sleep(0.5)
            statuses = _statuses(bridge.db_path)
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


def _query(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _pending(db_path: Path) -> int:
    return int(
        str(_query(db_path, "SELECT count(*) FROM notifications WHERE status = 'pending'")[0][0])
    )


def _statuses(db_path: Path) -> dict[str, int]:
    rows = _query(db_path, "SELECT status, count(*) FROM notifications GROUP BY status")
    return {str(status): int(str(count)) for status, count in rows}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
