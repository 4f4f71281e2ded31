"""``bridge route``: what the bridge would do with one notification, calling nothing upstream
(``bridge.app.route_preview``, which runs intake's own checks)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from bridge.app.dry_run_token import claims_from
from bridge.app.route_preview import DryRun, evaluate, render_json, render_text
from bridge.cli._common import add_config_argument, load_settings

__all__ = ["DryRun", "evaluate", "register", "render_json", "render_text"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "route",
        help="dry run: which rule a notification matches and whether intake would accept it",
        description="Dry run: reads one partner notification body, runs the local intake checks "
        "and the routing rules, and prints what would happen. Calls nothing upstream; exit 0 "
        "when it would be accepted, 1 when refused.",
    )
    parser.add_argument("--partner", required=True, help="the partner name, as in the URL path")
    parser.add_argument("--body", required=True, help="the notification body (JSON); - for stdin")
    add_config_argument(parser)
    parser.add_argument(
        "--claims",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="repeatable: put a TEST share token with these claims in the body, in place of its "
        "own (signed with a throwaway key, never sent), e.g. --claims session_kind=business; "
        "a value that reads as JSON (4102444800, true) is taken as such",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--now",
        type=_epoch,
        default=None,
        metavar="EPOCH",
        help="judge expiry at this Unix time instead of the clock",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, prog="share-bridge route")
    if settings is None:
        return 1
    try:
        body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
    except OSError as exc:
        sys.stderr.write(f"share-bridge route: cannot read {args.body}: {exc.strerror}\n")
        return 1
    try:
        claims = None if args.claims is None else claims_from(args.claims)
    except ValueError as exc:
        sys.stderr.write(f"share-bridge route: --claims: {exc}\n")
        return 2
    now = time.time() if args.now is None else args.now
    dry_run = evaluate(settings, partner=args.partner, body=body, now=now, claims=claims)
    sys.stdout.write((render_json(dry_run) if args.json else render_text(dry_run)) + "\n")
    return 0 if dry_run.refusal is None else 1


def _epoch(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a Unix time: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a Unix time: {text!r}")
    return value
