"""``share-bridge sink``: a webhook consumer for trying the bridge out, verifying what it gets."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

import orjson
import uvicorn

from bridge.cli._common import env_default
from bridge.sandbox.sink import VERIFIED, Sink, SinkEndpoint

DEFAULT_PORT = 8791


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sink",
        help="receive, verify and print the bridge's events (a stand-in for our system)",
        description="Serve POST /hooks/NAME; verify each event's Standard Webhooks signature "
        "with --secret (answer 401 when none verifies) and print it. GET /healthz answers 200.",
    )
    parser.add_argument(
        "--secret",
        action="append",
        required=env_default("BRIDGE_SINK_SECRET") is None,
        default=[],
        help="a whsec_ secret the events must be signed with; repeat while rotating "
        "(default: $BRIDGE_SINK_SECRET)",
    )
    parser.add_argument("--name", default="sink", help="serve POST /hooks/NAME (default: sink)")
    parser.add_argument(
        "--host",
        default=env_default("BRIDGE_SINK_HOST", "127.0.0.1"),
        help="address to bind (default: $BRIDGE_SINK_HOST, then 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env_default("BRIDGE_SINK_PORT", str(DEFAULT_PORT)),
        help=f"port to bind (default: $BRIDGE_SINK_PORT, then {DEFAULT_PORT})",
    )
    parser.set_defaults(run=run)


def printer(out: TextIO) -> Callable[[str, str, bytes], None]:
    """Prints each answer: the verified event, pretty, or why it was refused."""

    def show(name: str, verdict: str, body: bytes) -> None:
        if verdict == VERIFIED:
            event = orjson.loads(body)
            out.write(f"verified {event.get('type')} {event.get('id')} on /hooks/{name}\n")
            out.write(orjson.dumps(event, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            out.write(f"{verdict}: a POST to /hooks/{name} whose signature did not verify (401)\n")
        out.flush()

    return show


def run(args: argparse.Namespace) -> int:
    secrets = tuple(args.secret) or (env_default("BRIDGE_SINK_SECRET") or "",)
    try:
        sink = Sink([SinkEndpoint(args.name, secrets)], on_answer=printer(sys.stdout))
    except ValueError as exc:  # not base64 after whsec_
        sys.stderr.write(f"share-bridge sink: --secret must be a whsec_ secret ({exc})\n")
        return 1
    sys.stdout.write(
        f"share-bridge sink: listening on http://{args.host}:{args.port}/hooks/{args.name}\n"
    )
    sys.stdout.flush()
    uvicorn.run(
        sink.app, host=args.host, port=int(args.port), log_level="warning", access_log=False
    )
    return 0
