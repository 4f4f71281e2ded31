"""``share-bridge destinations list|enable|disable`` and ``redeliver``: downstream operations."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from bridge import config
from bridge.app.operations import DestinationView, Operations, RedeliverResult
from bridge.cli._common import add_config_argument
from bridge.cli.notifications_command import with_operations
from bridge.store import DeliveryStatus
from bridge.times import iso_utc_or_none

_REDELIVERABLE = (DeliveryStatus.DEAD.value, DeliveryStatus.DELIVERED.value)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    destinations = subparsers.add_parser("destinations", help="downstream destinations' health")
    actions = destinations.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="state, pending, dead and last error of each")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_argument(listing)
    listing.set_defaults(run=_list)
    enable = actions.add_parser("enable", help="resume a destination (e.g. after a 410)")
    enable.add_argument("name", help="the destination's name under destinations:")
    add_config_argument(enable)
    enable.set_defaults(run=_enable)
    disable = actions.add_parser("disable", help="hold a destination's deliveries")
    disable.add_argument("name", help="the destination's name under destinations:")
    disable.add_argument(
        "--reason",
        default="disabled by an operator",
        help="why, shown by destinations list (default: disabled by an operator)",
    )
    add_config_argument(disable)
    disable.set_defaults(run=_disable)

    redeliver = subparsers.add_parser(
        "redeliver",
        help="send dead or delivered deliveries again",
        description="Either one DELIVERY_ID, or --destination NAME --since TIME.",
    )
    redeliver.add_argument(
        "delivery_id", nargs="?", metavar="DELIVERY_ID", help="one delivery (dlv_...) to send again"
    )
    redeliver.add_argument(
        "--destination", metavar="NAME", help="with --since: what this destination got or missed"
    )
    redeliver.add_argument(
        "--since",
        metavar="TIME",
        type=since_arg,
        help="ISO 8601 (UTC unless an offset is given) or a time ago such as 30m, 2h, 1d",
    )
    redeliver.add_argument("--status", choices=_REDELIVERABLE, help="only these (default both)")
    add_config_argument(redeliver)
    redeliver.set_defaults(run=_redeliver)


def parse_since(text: str, *, now: float) -> float:
    """``2h`` (ago), or an ISO 8601 time (naive means UTC), as epoch seconds."""
    try:
        return now - config.parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time like 2h or 2026-11-25T10:00:00Z: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def since_arg(text: str) -> float:
    try:
        return parse_since(text, now=time.time())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _list(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        views = await ops.destinations()
        for view in views:
            row = state_json(view)
            if args.json:
                sys.stdout.write(orjson.dumps(row).decode() + "\n")
            else:
                sys.stdout.write(_line(row))
        if not views and not args.json:
            sys.stdout.write("no destinations configured or known to the store\n")
        return 0

    return with_operations(args, action)


def state_json(view: DestinationView) -> dict[str, Any]:
    """A destination's health as operators see it."""
    return {
        "name": view.name,
        "state": "enabled" if view.enabled else "disabled",
        "configured": view.configured,
        "reason": view.reason,
        "changed_at": _iso(view.changed_at),
        "pending": view.pending,
        "dead": view.dead,
        "last_error": view.last_error,
    }


def _line(row: dict[str, Any]) -> str:
    state = row["state"] + ("" if row["configured"] else " (not configured)")
    reason = f"  reason: {row['reason']}" if row["state"] == "disabled" and row["reason"] else ""
    last_error = row["last_error"] or "-"
    return (
        f"{row['name']:<20} {state:<10} pending={row['pending']:<6} dead={row['dead']:<6} "
        f"last_error: {last_error}{reason}\n"
    )


def _set_enabled(args: argparse.Namespace, *, enabled: bool, reason: str | None) -> int:
    async def action(ops: Operations) -> int:
        if not await ops.set_enabled(args.name, enabled=enabled, reason=reason):
            sys.stderr.write(f"share-bridge: no destination {args.name!r} in the configuration\n")
            return 1
        done = "enabled: its pending deliveries resume" if enabled else "disabled"
        sys.stdout.write(f"{args.name}: {done}\n")
        return 0

    return with_operations(args, action)


def _enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, enabled=True, reason="enabled by an operator")


def _disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, enabled=False, reason=args.reason)


def _redeliver(args: argparse.Namespace) -> int:
    by_id = args.delivery_id is not None
    if by_id:
        usable = args.destination is None and args.since is None and args.status is None
    else:
        usable = args.destination is not None and args.since is not None
    if not usable:
        sys.stderr.write(
            "share-bridge redeliver: give DELIVERY_ID alone, or --destination NAME --since TIME"
            " [--status dead|delivered]\n"
        )
        return 2

    async def one(ops: Operations) -> int:
        result = await ops.redeliver(args.delivery_id)
        if result is RedeliverResult.REQUEUED:
            sys.stdout.write(f"{args.delivery_id}: queued again; the running bridge sends it\n")
            return 0
        if result is RedeliverResult.NOT_FOUND:
            sys.stderr.write(f"share-bridge: no delivery {args.delivery_id}\n")
        else:
            sys.stderr.write(f"share-bridge: {args.delivery_id} is already pending\n")
        return 1

    async def since(ops: Operations) -> int:
        status = DeliveryStatus(args.status) if args.status else None
        count = await ops.recover(args.destination, since=args.since, status=status)
        if count is None:
            sys.stderr.write(f"share-bridge: no destination {args.destination!r}\n")
            return 1
        sys.stdout.write(
            f"{count} deliveries to {args.destination} since {_iso(args.since)} queued again\n"
        )
        return 0

    return with_operations(args, one if by_id else since)


def _iso(epoch_s: float | None) -> str | None:
    return iso_utc_or_none(epoch_s)
