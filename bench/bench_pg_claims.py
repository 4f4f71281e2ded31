"""Import claims per second on PostgreSQL: one claimer against three (replicas) on one backlog.

Each round seeds a backlog of import jobs through ``Store.accept`` (untimed; the partners, so
the fair claim's lanes, taken in turn), then lets claimers take it until it is empty: first one
claimer process, then (on a backlog seeded afresh) three, each a separate process with its own
``PostgresStore`` on the same fresh schema, as replicas are. A claimer loops as the import
worker does at its steady state: ``claim(IMPORT, limit=1, fair_share=...)`` (the fair claim:
lanes in turns, ``FOR UPDATE SKIP LOCKED``, under the import claim's advisory lock so that a
lane's cap holds across replicas) and then ``complete`` of the job it got. The rate is the
backlog over the time from the start signal to the last claimer's finding the queue empty;
the baseline is one claimer, in the same round. Rounds alternate; medians. Checked: every job
claimed exactly once.

No target: the figure says how the claim scales with replicas. The import claims of all
replicas run one at a time (the advisory lock), so more claimers cannot take jobs faster than
one claim's round trip allows; what they add is overlap of the rest (the ``complete``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from bench import _pg
from bench._bridge_harness import fmt, note
from bridge.store import NewNotification
from bridge.store.model import FairShare, JobKind
from bridge.store.postgres import PostgresStore
from bridge.types import Route, SessionKind

ROUTE = Route(
    rule="bench", workflow_id="wf", vendor_data="bench:1", trust_review=False, destinations=()
)
FAIR_SHARE = FairShare(pace_s=0.1)  # 600 imports a minute
LEASE_S = 600.0


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    parser = argparse.ArgumentParser(prog="python -m bench pg_claims", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=3000, help="backlog per measurement")
    parser.add_argument("--lanes", type=int, default=8, help="partners the backlog is spread over")
    parser.add_argument("--claimers", type=int, default=3, help="claimers of the second set-up")
    args = parser.parse_args(list(argv))

    setups = {"1 claimer": 1, f"{args.claimers} claimers": args.claimers}
    rates: dict[str, list[float]] = {name: [] for name in setups}
    doubles = 0
    key = _pg.token_key()
    with _pg.fresh_schema("bench_claims") as schema:
        for number in range(1, args.rounds + 1):
            for name, claimers in setups.items():
                asyncio.run(_seed(schema, key, args.jobs, args.lanes, round_=number))
                measured = _measure(schema, key, claimers)
                distinct = len(set(measured.job_ids))
                doubles += len(measured.job_ids) - distinct
                if distinct != args.jobs:
                    raise RuntimeError(f"{distinct} jobs claimed of {args.jobs}")
                rates[name].append(args.jobs / measured.elapsed_s)
            note(
                f"round {number}: "
                + "   ".join(f"{name} {fmt(r[-1])}/s" for name, r in rates.items())
            )
    median = {name: statistics.median(r) for name, r in rates.items()}
    one, many = setups
    note(
        f"import claims/s (claim + complete, limit 1, {args.lanes} lanes), median of "
        f"{args.rounds} rounds of {args.jobs} jobs:\n"
        + "".join(f"  {name:<12}{fmt(median[name]):>8}/s\n" for name in setups)
        + f"  ratio      {median[many] / median[one]:8.2f}  ({many} / {one}, the baseline)\n"
        f"  every job claimed once: {'yes' if doubles == 0 else f'NO ({doubles} twice)'}"
    )
    return 0 if doubles == 0 else 1


@dataclass(frozen=True, slots=True)
class Measured:
    elapsed_s: float
    job_ids: list[int]


def _measure(schema: str, key: bytes, claimers: int) -> Measured:
    spawn = multiprocessing.get_context("spawn")
    ready: Queue[bool] = spawn.Queue()
    done: Queue[list[int]] = spawn.Queue()
    go = spawn.Event()
    processes = [
        spawn.Process(target=_claimer, args=(schema, key, f"claimer-{n}", ready, go, done))
        for n in range(claimers)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=60)
        started = time.perf_counter()
        go.set()
        job_ids: list[int] = []
        for _ in processes:
            job_ids += done.get(timeout=600)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    return Measured(elapsed, job_ids)


def _claimer(
    schema: str, key: bytes, owner: str, ready: Queue[bool], go: Event, done: Queue[list[int]]
) -> None:
    """In a claimer process: claim and complete until the queue is empty; the ids claimed."""
    asyncio.run(_claim_all(schema, key, owner, ready, go, done))


async def _claim_all(
    schema: str, key: bytes, owner: str, ready: Queue[bool], go: Event, done: Queue[list[int]]
) -> None:
    store = PostgresStore.open(
        _pg.DSN, clock=time.time, token_keys=[key], schema=schema, pool_size=2
    )
    claimed: list[int] = []
    try:
        await store.migrate()
        ready.put(True)
        await asyncio.to_thread(go.wait)
        while jobs := await store.claim(
            JobKind.IMPORT, owner=owner, lease_s=LEASE_S, limit=1, fair_share=FAIR_SHARE
        ):
            for job in jobs:
                claimed.append(job.id)
                await store.complete(job)
    finally:
        done.put(claimed)
        with contextlib.suppress(Exception):
            await store.close()


async def _seed(schema: str, key: bytes, jobs: int, lanes: int, *, round_: int) -> None:
    store = PostgresStore.open(_pg.DSN, clock=time.time, token_keys=[key], schema=schema)
    deadline = time.time() + 86400
    stamp = time.monotonic_ns()

    async def accept(n: int) -> None:
        await store.accept(
            NewNotification(
                partner=f"partner-{n % lanes}",
                partner_event_id=None,
                message_id=None,
                business_key=f"seed:{round_}:{stamp}:{n}",
                token="x" * 400,
                token_sha256=f"{stamp:032x}{n:032x}"[-64:],
                session_kind=SessionKind.USER,
                source_application_id="app",
                source_session_id=f"{stamp}-{n}",
                deadline=deadline + n,
                route=ROUTE,
            )
        )

    try:
        await store.migrate()
        for start in range(0, jobs, 256):
            await asyncio.gather(*(accept(n) for n in range(start, min(start + 256, jobs))))
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
