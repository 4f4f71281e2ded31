"""Soak: ``bridge serve`` under mixed partner traffic with faults, for an hour by default.

The pieces are the demo's: the Didit sandbox as a real process, the demo's bridge configuration
(three partners: standard-webhooks, hmac, jwt; KYC and KYB rules; two destinations), its signers
and its plan of messages, each with the end state it must reach (imports, rejections, refusals,
exact replays and resent shares). The soak sends one such batch after another until the time is
up, each with fresh tokens and customer ids, against upstream faults (5xx, 429, ambiguous answers
lost after the import: 504, dropped, too slow) and a sink that answers 503 now and then.

Once a minute (``--sample-s``) it prints the bridge's resident memory, open descriptors, store
file sizes (WAL included), queue depth and outcomes. At the end it waits for the queue to drain
and gives a verdict: every share final and every message as expected, none redeemed twice (the
sandbox's ledger), memory, descriptors and WAL flat after the warm-up (``bench.soak_verdict``).
Exit 0 only when every check passes. Everything runs on 127.0.0.1.

``python -m bench soak --minutes 5`` (``make soak SOAK_MINUTES=5``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from bench._bridge_harness import memory_kb
from bench.soak_verdict import Sample, verdict
from bridge.demo import records, sandbox_setup
from bridge.demo.bridge_process import BridgeProcess, free_port, run_bridge
from bridge.demo.config_template import (
    WRITES_PER_MINUTE,
    DemoSecrets,
    OurApplication,
    render_config,
)
from bridge.demo.plan import MIN_COUNT, Message, build_plan, mix_for
from bridge.demo.traffic import Traffic
from bridge.demo.verdict import FINAL, answer_problem, delivery_problems, outcome_problem
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.process import start_sandbox_process
from bridge.sandbox.sink import Sink
from bridge.sandbox.threaded import serve_in_thread
from bridge.store import queries
from tests.support.read_only import read_rows
from tests.support.waiting import wait_until_async

#: The demo's import faults plus injected 429s: every kind of upstream trouble at once.
IMPORT_FAULTS = {**sandbox_setup.IMPORT_FAULTS, "throttle_rate": 0.03, "retry_after_s": 1}
SINK_FAILS_EVERY = 9  # the sink answers 503 to every ninth delivery, whatever it is
SETTLE_TIMEOUT_S = 120.0  # for one batch to reach its end state (5xx, 429 and slow answers)
POLL_S = 0.25
#: The store's own counting queries, run on a read-only connection: the soak must not open the
#: running server's store the way the server does (migrations and a writer of its own).
_COUNTS = queries.load_queries("sqlite")


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("SOAK_MINUTES", "60")),
        help="how long to send traffic (default: $SOAK_MINUTES or 60)",
    )
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--batch", type=int, default=60, help="messages per batch")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    args = parser.parse_args(list(argv))
    if args.minutes <= 0 or args.sample_s <= 0 or args.batch < MIN_COUNT:
        parser.error(f"--minutes and --sample-s must be positive, --batch at least {MIN_COUNT}")
    workdir = Path(tempfile.mkdtemp(prefix="bridge-soak-"))
    try:
        return _run(args, workdir)
    finally:
        if args.keep:
            _say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(args: argparse.Namespace, workdir: Path) -> int:
    with ExitStack() as stack:
        sandbox_url, _ = stack.enter_context(start_sandbox_process(seed=args.seed))
        control = stack.enter_context(SandboxControl(sandbox_url, timeout_s=120))
        ours = OurApplication.from_world(control.world())
        # Set once: the sandbox draws each call's fault from its index since the faults were set.
        control.set_quota(write_limit=WRITES_PER_MINUTE, read_limit=WRITES_PER_MINUTE)
        control.set_faults("import", **IMPORT_FAULTS)
        secrets = DemoSecrets.generate()
        sink = Sink(secrets.sink_endpoints(crm_fail_first=0))
        sink_url = stack.enter_context(serve_in_thread(_fails_now_and_then(sink.app)))
        port = free_port()
        config_path = workdir / "bridge.yaml"
        store_path = workdir / "bridge.db"
        config_path.write_text(
            render_config(
                ours=ours,
                sandbox_url=sandbox_url,
                sink_url=sink_url,
                store_path=str(store_path),
                port=port,
            )
        )
        bridge = stack.enter_context(
            run_bridge(
                config_path,
                port,
                environment=secrets.environment(),
                log_path=workdir / "bridge.log",
            )
        )
        _say(
            f"soak: {args.minutes:g} min of batches of {args.batch} messages; bridge "
            f"{bridge.url} (pid {bridge.process.pid}), sandbox {sandbox_url}, sink {sink_url}; "
            f"faults {IMPORT_FAULTS}, sink 503 every {SINK_FAILS_EVERY}th delivery"
        )
        soak = _Soak(args, control, sink, bridge, secrets, store_path)
        samples, problems = asyncio.run(soak.run())
        upstream = sandbox_setup.upstream(control, ours)
        imported = samples[-1].outcomes.get("imported", 0) if samples else 0
        checks = verdict(
            samples,
            duration_s=args.minutes * 60,
            problems=problems,
            double_redemptions=upstream.double_redemptions,
            redemptions=upstream.redemptions,
            imported=imported,
        )
        _say(f"upstream: {upstream.import_calls} import calls, faults {upstream.faults}")
        answered = sum(sink.report().requests.values())
        _say(f"sink: {answered} deliveries let through (every {SINK_FAILS_EVERY}th refused)")
        passed = all(check.ok for check in checks)
        _say("verdict: " + ("PASS" if passed else "FAIL"))
        for check in checks:
            _say(check.line())
        if not passed:
            _say(f"the bridge's last log lines:\n{bridge.log_tail()}")
        return 0 if passed else 1


class _Soak:
    def __init__(
        self,
        args: argparse.Namespace,
        control: SandboxControl,
        sink: Sink,
        bridge: BridgeProcess,
        secrets: DemoSecrets,
        store_path: Path,
    ) -> None:
        self.args, self.control, self.sink, self.bridge = args, control, sink, bridge
        self.secrets, self.store_path = secrets, store_path
        self.rng = random.Random(args.seed)  # reproducible traffic
        self.samples: list[Sample] = []
        self.problems: list[str] = []
        self.sent = 0

    async def run(self) -> tuple[list[Sample], list[str]]:
        started = time.monotonic()
        ends = started + self.args.minutes * 60
        sampler = asyncio.create_task(self._sample_every(started))
        admin_headers = {"authorization": f"Bearer {self.secrets.admin}"}
        async with (
            httpx.AsyncClient(timeout=10.0) as client,
            httpx.AsyncClient(
                base_url=self.bridge.url, headers=admin_headers, timeout=10.0
            ) as admin,
        ):
            number = 0
            while time.monotonic() < ends and self.bridge.alive():
                await self._batch(client, admin, number)
                number += 1
        await self._drain()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        if self.bridge.alive():
            self.samples.append(self._sample(started))
            _say(self.samples[-1].line())
        if not self.bridge.alive():
            self.problems.append(f"bridge serve exited with {self.bridge.process.returncode}")
        return self.samples, self.problems

    async def _batch(
        self, client: httpx.AsyncClient, admin: httpx.AsyncClient, number: int
    ) -> None:
        """One demo plan with fresh tokens, sent, then checked once it has settled."""
        mix = mix_for(self.args.batch)
        _, material = await asyncio.to_thread(sandbox_setup.mint, self.control, mix)
        plan = [_unique(message, number) for message in build_plan(mix, material, self.rng)]
        traffic = Traffic(
            client,
            self.bridge.url,
            signers=self.secrets.partner_signers(),
            forged_signers=self.secrets.forged_signers(),
        )
        await traffic.send_all(plan)
        self.sent += len(plan)
        await self._drain()
        accepted = {a.notification_id for a in traffic.answers.values() if a.notification_id}
        recorded = await records.with_timelines(admin, accepted)  # as an operator reads
        for message in plan:
            answer = traffic.answers.get(message.index)
            found = [answer_problem(message, answer, traffic.answers)]
            found.append(outcome_problem(message, answer, recorded))
            self.problems += [f"batch {number}: {problem}" for problem in found if problem]
        events = {event for found in recorded.values() for event in found.event_ids}
        verified = {pair for pair in self.sink.report().verified_pairs() if pair[0] in events}
        problems = delivery_problems(recorded, verified, rejected_at_sink=0, forged_sent=0)
        self.problems += [f"batch {number}: {problem}" for problem in problems]

    async def _drain(self) -> None:
        """Wait until nothing is queued (or the batch's time is up: the verdict reports it)."""
        with contextlib.suppress(TimeoutError):
            await wait_until_async(
                lambda: not self.bridge.alive() or self._queued() == 0,
                "nothing queued",
                timeout_s=SETTLE_TIMEOUT_S,
                poll_s=POLL_S,
            )

    async def _sample_every(self, started: float) -> None:
        while self.bridge.alive():
            await asyncio.sleep(self.args.sample_s)
            self.samples.append(self._sample(started))
            _say(self.samples[-1].line())

    def _sample(self, started: float) -> Sample:
        pid = self.bridge.process.pid
        files = sorted(self.store_path.parent.glob(self.store_path.name + "*"))
        return Sample(
            at_s=time.monotonic() - started,
            rss_kb=memory_kb(pid)["VmRSS"],
            fds=len(os.listdir(f"/proc/{pid}/fd")),
            store_bytes={path.name: path.stat().st_size for path in files if path.exists()},
            queue=self._queued(),
            outcomes={s: n for s, n in self._notifications().items() if n and s in FINAL},
            sent=self.sent,
        )

    def _notifications(self) -> dict[str, int]:
        """Notifications by status."""
        return dict(read_rows(self.store_path, _COUNTS["count_notifications"]))

    def _queued(self) -> int:
        """Notifications not final yet, plus deliveries not delivered yet."""
        pending = sum(n for s, n in self._notifications().items() if s not in FINAL)
        deliveries = dict(read_rows(self.store_path, _COUNTS["count_deliveries"]))
        return int(pending) + int(deliveries.get("pending", 0))


def _unique(message: Message, batch: int) -> Message:
    """Batch ``batch``'s copy of a planned message: its own message id and customer id, the
    same transformation for a replay as for its original (so it stays the same bytes)."""
    prefix = f"b{batch}-".encode()
    body = message.body.replace(b'"cust-', b'"' + prefix + b"cust-")
    return dataclasses.replace(message, body=body, message_id=f"b{batch}_{message.message_id}")


def _fails_now_and_then(app: ASGIApp) -> ASGIApp:
    """``app`` behind a door that answers 503 to every ``SINK_FAILS_EVERY``-th request."""
    count = 0

    async def door(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal count
        if scope["type"] == "http":
            count += 1
            if count % SINK_FAILS_EVERY == 0:
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await app(scope, receive, send)

    return door


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
