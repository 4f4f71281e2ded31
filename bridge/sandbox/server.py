"""Run the sandbox with its ready world: ``share-bridge sandbox``, ``python -m bridge.sandbox``."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shlex
import signal
import socket
import sys
import threading
from types import FrameType
from typing import TextIO

import uvicorn

from bridge.sandbox.app import create_app
from bridge.sandbox.model import FINISHED_STATUSES, Session, WorkflowKind
from bridge.sandbox.quota import QuotaConfig
from bridge.sandbox.starter_world import OURS, PARTNERS, build_starter_world
from bridge.sandbox.world import World

DEFAULT_PORT = 8790


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's flags; each has an environment twin."""
    env = os.environ.get
    parser.add_argument(
        "--host",
        default=env("BRIDGE_SANDBOX_HOST", "127.0.0.1"),
        help="address to bind (default: $BRIDGE_SANDBOX_HOST, then 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("BRIDGE_SANDBOX_PORT", str(DEFAULT_PORT))),
        help="port to bind, 0 for any free one (default: $BRIDGE_SANDBOX_PORT, then 8790)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(env("BRIDGE_SANDBOX_SEED", "0")),
        help="seed of the world and the fault schedules (default: $BRIDGE_SANDBOX_SEED, then 0)",
    )
    parser.add_argument(
        "--webhook-url",
        default=env("BRIDGE_SANDBOX_WEBHOOK_URL"),
        help="where our application's status webhooks go ($BRIDGE_SANDBOX_WEBHOOK_URL)",
    )
    parser.add_argument(
        "--webhook-secret",
        default=env("BRIDGE_SANDBOX_WEBHOOK_SECRET"),
        help="our application's webhook secret ($BRIDGE_SANDBOX_WEBHOOK_SECRET; else seeded)",
    )
    parser.add_argument(
        "--env",
        action="store_true",
        help="print the export lines for config/bridge.sandbox.yaml and exit, without serving",
    )
    parser.add_argument(
        "--write-limit",
        type=int,
        default=int(env("BRIDGE_SANDBOX_WRITE_LIMIT", "300")),
        help="writes per API key per 60 s (default: $BRIDGE_SANDBOX_WRITE_LIMIT, then 300)",
    )


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Build the ready world from ``args.seed``, print what an integrator needs, serve."""
    if args.write_limit < 1 or not 0 <= args.port <= 65535:
        sys.stderr.write(
            "share-bridge sandbox: --write-limit must be >= 1 and --port in 0..65535\n"
        )
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_cleanly)
    world = build_starter_world(args.seed)
    if args.env:
        host = f"[{args.host}]" if ":" in args.host else args.host
        out.write(environment_lines(world, f"http://{host}:{args.port}", args.seed))
        return 0
    ours = world.application_named(OURS)
    ours.webhook_url = args.webhook_url
    if args.webhook_secret:
        ours.webhook_secret = args.webhook_secret
    app = create_app(world, seed=args.seed, quota=QuotaConfig(write_limit=args.write_limit))
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        sys.stderr.write(f"share-bridge sandbox: cannot bind {args.host}:{args.port}: {exc}\n")
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    base_url = f"http://{host}:{sock.getsockname()[1]}"
    out.write(banner(world, base_url, args.seed))
    out.flush()
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM before uvicorn runs, or the one it raises again after its graceful shutdown (to
    die by it): exit 0 instead, so atexit handlers run too."""
    raise SystemExit(0)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bridge_secret(seed: int, name: str) -> str:
    """A strong ``whsec_`` secret for the sandbox configuration, the same for the same seed, so the
    banner and ``--env`` print the same values. Fit for a sandbox only: anyone can derive it."""
    digest = hashlib.sha256(f"share-bridge sandbox:{seed}:{name}".encode()).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def environment(world: World, base_url: str, seed: int) -> dict[str, str]:
    """The variables ``config/bridge.sandbox.yaml`` reads, and what minting a token needs."""
    ours = world.application_named(OURS)
    partner = world.application_named(PARTNERS[0])
    return {
        "DIDIT_BASE_URL": base_url,
        "DIDIT_API_KEY": ours.api_key,
        "DIDIT_APPLICATION_ID": ours.id,
        "KYC_WORKFLOW_ID": world.workflow_of_kind(ours.id, WorkflowKind.KYC).id,
        "KYB_WORKFLOW_ID": world.workflow_of_kind(ours.id, WorkflowKind.KYB).id,
        "ACME_WHSEC": bridge_secret(seed, "acme"),
        "SINK_WHSEC": bridge_secret(seed, "sink"),
        "ACME_DIDIT_API_KEY": partner.api_key,
        "ACME_SESSION_ID": _shareable_session(world).id,
    }


def environment_lines(world: World, base_url: str, seed: int) -> str:
    return "".join(
        f"export {name}={shlex.quote(value)}\n"
        for name, value in environment(world, base_url, seed).items()
    )


def _shareable_session(world: World) -> Session:
    """The first partner's newest approved KYC session: the one the examples share."""
    partner = world.application_named(PARTNERS[0])
    return next(
        s
        for s in reversed(list(world.sessions_of(partner.id)))
        if s.status == "Approved" and s.kind is WorkflowKind.KYC.session_kind
    )


def banner(world: World, base_url: str, seed: int) -> str:
    """The integrator's sheet: ids, keys, workflows, sessions to share, and ready curl lines."""
    ours = world.application_named(OURS)
    kyc = world.workflow_of_kind(ours.id, WorkflowKind.KYC)
    kyb = world.workflow_of_kind(ours.id, WorkflowKind.KYB)
    lines = [
        f"Didit sandbox (seed {seed}) listening on {base_url}",
        "",
        "Our application (the receiving one; the bridge's `didit:` section):",
        f"  base_url        {base_url}",
        f"  application_id  {ours.id}",
        f"  api_key         {ours.api_key}",
        f"  KYC workflow_id {kyc.id}",
        f"  KYB workflow_id {kyb.id}",
        f"  webhooks        {ours.webhook_url or '(none: pass --webhook-url)'}",
        "",
        "Partner applications and their finished sessions:",
    ]
    for name in PARTNERS:
        partner = world.application_named(name)
        lines.append(f"  {name:<8} application_id {partner.id}  api_key {partner.api_key}")
        for session in reversed(list(world.sessions_of(partner.id))):
            if session.status in FINISHED_STATUSES:
                lines.append(f"           {session.kind.value:<8} {session.status:<9} {session.id}")
    partner = world.application_named(PARTNERS[0])
    source = next(  # the oldest approved KYC session: $ACME_SESSION_ID stays free for the bridge
        s
        for s in world.sessions_of(partner.id)
        if s.status == "Approved" and s.kind is kyc.kind.session_kind
    )
    share_body = json.dumps({"for_application_id": ours.id, "ttl_in_seconds": 3600})
    import_body = json.dumps(
        {
            "share_token": "TOKEN",
            "workflow_id": kyc.id,
            "vendor_data": "user-1",
            "trust_review": False,
        }
    ).replace('"TOKEN"', '"\'"$TOKEN"\'"')
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"share_token\"])'"
    lines += [
        "",
        'For config/bridge.sandbox.yaml (in a shell: eval "$(share-bridge sandbox --port '
        f'{base_url.rsplit(":", 1)[1]} --env)"):',
        *(f"  {line}" for line in environment_lines(world, base_url, seed).splitlines()),
        "",
        f"Mint a share token ({partner.name} shares a session with us), then redeem it directly."
        " Didit imports",
        "a session once: sent through the bridge afterwards, a token of this session ends",
        "already_imported. For the bridge, share another session ($ACME_SESSION_ID above):",
        f"  TOKEN=$(curl -s -X POST {base_url}/v3/session/{source.id}/share/ \\",
        f"    -H {shlex.quote('x-api-key: ' + partner.api_key)} \\",
        f"    -H 'Content-Type: application/json' -d {shlex.quote(share_body)} | {extract})",
        f"  curl -s -X POST {base_url}/v3/session/import-shared/ \\",
        f"    -H {shlex.quote('x-api-key: ' + ours.api_key)} \\",
        f"    -H 'Content-Type: application/json' -d '{import_body}'",
        "",
        f"Control API (world, faults, quota, ledgers): {base_url}/_sandbox/world",
        "",
    ]
    return "\n".join(lines)
