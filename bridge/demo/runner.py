"""``share-bridge demo``: the sandbox, a sink and the bridge on this machine, a mixed stream of
partner notifications, live progress, a summary, and exit 0 only if everything ended as it must."""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from bridge.demo import records, sandbox_setup, summary
from bridge.demo.bridge_process import BridgeProcess, BridgeStartError, free_port, run_bridge
from bridge.demo.config_template import DESTINATIONS, DemoSecrets, render_config
from bridge.demo.plan import Message, Scenario, build_plan, mix_for
from bridge.demo.progress import ProgressView, tally
from bridge.demo.traffic import Traffic
from bridge.demo.verdict import (
    Answer,
    Recorded,
    answer_problem,
    delivery_problems,
    outcome_problem,
)
from bridge.errors import StoreUnavailable
from bridge.sandbox.control import SandboxControl, SandboxControlError
from bridge.sandbox.process import SandboxStartError, start_sandbox_process
from bridge.sandbox.sink import Sink, SinkReport
from bridge.sandbox.threaded import serve_in_thread
from bridge.signing import new_whsec
from bridge.types import NotificationStatus

POLL_INTERVAL_S = 0.2
FORGED_CONTROLS = 1  # deliveries the demo forges itself, to show the sink refuses them


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions:
    count: int = 300
    seed: int = 7
    timeout_s: float = 50.0  # for the traffic to reach its end state, after start-up
    crm_fail_first: int = 30  # the CRM hook answers 503 to this many requests first
    keep: bool = False  # keep the temporary directory (config, store, bridge log)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Stage:
    """What a run plays with, once everything has started."""

    plan: Sequence[Message]
    bridge: BridgeProcess
    sink: Sink
    sink_url: str
    secrets: DemoSecrets


@dataclass(frozen=True, slots=True, kw_only=True)
class _Observed:
    answers: Mapping[int, Answer]
    recorded: Mapping[str, Recorded]
    sink: SinkReport
    problems: Sequence[str]


def run_demo(options: DemoOptions, out: TextIO) -> int:
    """Run the whole demo; 0 when every check passed, 1 otherwise, 130 on Ctrl-C."""
    workdir = Path(tempfile.mkdtemp(prefix="bridge-demo-"))
    started = time.monotonic()
    try:
        with ExitStack() as stack:
            return _run(options, out, workdir, stack, started)
    except KeyboardInterrupt:
        out.write("\ninterrupted: stopping the bridge, the sink and the sandbox\n")
        return 130
    except (SandboxStartError, BridgeStartError, SandboxControlError, StoreUnavailable) as exc:
        out.write(f"\nbridge demo: could not run: {exc}\n")
        return 1
    except httpx.HTTPError as exc:  # the sandbox stopped answering its control API
        out.write(f"\nbridge demo: the sandbox stopped answering: {exc!r}\n")
        return 1
    finally:
        if options.keep:
            out.write(f"kept {workdir} (config, store, bridge log)\n")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(options: DemoOptions, out: TextIO, workdir: Path, stack: ExitStack, started: float) -> int:
    mix = mix_for(options.count)
    out.write("starting the Didit sandbox ... ")
    out.flush()
    sandbox_url, _ = stack.enter_context(start_sandbox_process(seed=options.seed))
    control = stack.enter_context(SandboxControl(sandbox_url))
    ours, material = sandbox_setup.prepare(control, mix)
    plan = build_plan(mix, material, random.Random(options.seed))  # noqa: S311 - reproducible traffic
    secrets = DemoSecrets.generate()
    sink = Sink(secrets.sink_endpoints(options.crm_fail_first))
    sink_url = stack.enter_context(serve_in_thread(sink.app))
    out.write("the sink ... ")
    out.flush()
    store_path = workdir / "bridge.db"
    config_path = workdir / "bridge.yaml"
    port = free_port()
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
    out.write(f"the bridge: ready in {time.monotonic() - started:.1f}s\n")
    out.write(_introduction(plan, sandbox_url, sink_url, bridge.url, options.crm_fail_first))
    traffic_started = time.monotonic()
    stage = _Stage(plan=plan, bridge=bridge, sink=sink, sink_url=sink_url, secrets=secrets)
    observed = asyncio.run(_drive(stage, out, options.timeout_s, traffic_started))
    upstream = sandbox_setup.upstream(control, ours)
    problems = [*observed.problems, *_upstream_problems(upstream, observed.recorded)]
    facts = summary.RunFacts(
        plan=plan,
        answers=observed.answers,
        recorded=observed.recorded,
        sink=observed.sink,
        upstream=upstream,
        destinations=DESTINATIONS,
        elapsed_s=time.monotonic() - started,
        problems=problems,
    )
    out.write(summary.render(facts))
    if problems:
        out.write(f"\nthe bridge's last log lines:\n{bridge.log_tail()}\n")
    return 1 if problems else 0


def _introduction(
    plan: Sequence[Message], sandbox_url: str, sink_url: str, bridge_url: str, crm_down: int
) -> str:
    kinds = Counter(message.scenario for message in plan)
    mix = ", ".join(f"{kinds[s]} {s.value}" for s in Scenario if kinds[s])
    return (
        f"  sandbox {sandbox_url}   sink {sink_url}   bridge {bridge_url}\n"
        f"  partners: acme (standard-webhooks), globex (hmac + timestamp), initech (jwt HS256)\n"
        f"  destinations: crm (two secrets: a rotation; down for its first {crm_down} requests), "
        f"audit\n"
        f"  upstream faults: ambiguous import answers (504, dropped, too slow) and 5xx\n"
        f"sending {len(plan)} notifications: {mix}\n"
    )


async def _drive(stage: _Stage, out: TextIO, timeout_s: float, started: float) -> _Observed:
    plan, sink = stage.plan, stage.sink
    admin_headers = {"authorization": f"Bearer {stage.secrets.admin}"}
    async with (
        httpx.AsyncClient(timeout=10.0) as client,
        httpx.AsyncClient(base_url=stage.bridge.url, headers=admin_headers, timeout=10.0) as admin,
    ):
        traffic = Traffic(
            client,
            stage.bridge.url,
            signers=stage.secrets.partner_signers(),
            forged_signers=stage.secrets.forged_signers(),
        )
        problems = await _watch(stage, traffic, admin, out, timeout_s, started)
        problems += await _forge_a_delivery(client, stage.sink_url)
        listing = await records.listing(admin)
        recorded = await records.with_timelines(admin, listing)
    report = sink.report()
    problems += _message_problems(plan, traffic.answers, recorded)
    problems += delivery_problems(
        recorded,
        report.verified_pairs(),
        rejected_at_sink=sum(report.rejected.values()),
        forged_sent=FORGED_CONTROLS,
    )
    return _Observed(answers=traffic.answers, recorded=recorded, sink=report, problems=problems)


async def _watch(
    stage: _Stage,
    traffic: Traffic,
    admin: httpx.AsyncClient,
    out: TextIO,
    timeout_s: float,
    started: float,
) -> list[str]:
    """Send the traffic and redraw the progress until everything is done, or time is up."""
    plan, bridge, sink = stage.plan, stage.bridge, stage.sink
    view = ProgressView(out, tty=out.isatty())
    sending = asyncio.create_task(traffic.send_all(plan))
    problems: list[str] = []
    try:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            recorded = await records.listing(admin)
            pending_deliveries = await records.pending_deliveries(admin)
            current = tally(
                plan,
                traffic.answers,
                recorded,
                sink.report(),
                sent=traffic.sent,
                elapsed_s=time.monotonic() - started,
            )
            view.update(current)
            if sending.done() and current.complete and pending_deliveries == 0:
                break
            if not bridge.alive():
                problems.append(f"share-bridge serve exited with {bridge.process.returncode}")
                break
            if current.elapsed_s > timeout_s:
                problems.append(
                    f"timed out after {timeout_s:.0f}s: {current.total - current.done} of "
                    f"{current.total} notifications had not reached their expected state"
                )
                break
        view.finish(current)
    finally:
        if not sending.done():
            sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
    return problems


async def _forge_a_delivery(client: httpx.AsyncClient, sink_url: str) -> list[str]:
    """Post an event signed with a secret nobody configured: the sink must refuse it."""
    body = orjson.dumps({"type": "share.imported", "id": "evt_forged", "data": {}})
    now = datetime.now(UTC)
    forger = Webhook(new_whsec())
    headers = {
        "content-type": "application/json",
        "webhook-id": "evt_forged",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": forger.sign("evt_forged", now, body.decode()),
    }
    response = await client.post(f"{sink_url}/hooks/audit", content=body, headers=headers)
    if response.status_code != 401:
        return [f"the sink answered {response.status_code} to a forged delivery, not 401"]
    return []


def _message_problems(
    plan: Sequence[Message], answers: Mapping[int, Answer], recorded: Mapping[str, Recorded]
) -> list[str]:
    problems: list[str] = []
    for message in plan:
        answer = answers.get(message.index)
        problems += filter(None, [answer_problem(message, answer, answers)])
        problems += filter(None, [outcome_problem(message, answer, recorded)])
    accepted = {a.notification_id for a in answers.values() if a.http_status == 202}
    for notification_id in sorted(set(recorded) - accepted):
        problems.append(f"notification {notification_id} is stored, but no message got its 202")
    return problems


def _upstream_problems(up: summary.Upstream, recorded: Mapping[str, Recorded]) -> list[str]:
    problems: list[str] = []
    if up.double_redemptions:
        problems.append(f"the sandbox redeemed {up.double_redemptions} session(s) twice")
    imported = sum(found.status is NotificationStatus.IMPORTED for found in recorded.values())
    if up.redemptions != imported:
        problems.append(
            f"the sandbox redeemed {up.redemptions} tokens, the bridge recorded {imported} imports"
        )
    return problems
