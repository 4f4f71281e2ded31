"""``bridge notifications list|show`` and ``bridge retry``: operations on the store."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson

from bridge import config
from bridge.app.admin_views import notification_json, timeline_json
from bridge.app.operations import RETRY_REFUSALS, Operations
from bridge.cli._common import add_config_argument
from bridge.errors import ConfigError, StoreUnavailable
from bridge.store import NotificationSearch, RetryResult, Timeline, open_store
from bridge.types import NotificationStatus


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notifications = subparsers.add_parser("notifications", help="list or show notifications")
    actions = notifications.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="newest first")
    listing.add_argument("--status", choices=[s.value for s in NotificationStatus])
    listing.add_argument("--partner")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_argument(listing)
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="one notification with its timeline")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    add_config_argument(show)
    show.set_defaults(run=_show)
    retry = subparsers.add_parser(
        "retry", help="re-run a failed notification while its token lives"
    )
    retry.add_argument("id")
    add_config_argument(retry)
    retry.set_defaults(run=_retry)


def with_operations(
    args: argparse.Namespace, action: Callable[[Operations], Awaitable[int]]
) -> int:
    """Open the configured store, run ``action`` on the operator's ``Operations`` (the admin
    API's and the console's), close it; config and store errors exit 1."""
    try:
        settings = config.load(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"bridge: invalid configuration:\n{exc}\n")
        return 1

    async def main() -> int:
        store = open_store(settings.store.url, clock=time.time)
        try:
            return await action(
                Operations(store=store, settings=lambda: settings, log_actions=False)
            )
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        sys.stderr.write(f"bridge: {exc.message}\n")
        return 1


def _list(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        search = NotificationSearch(
            status=NotificationStatus(args.status) if args.status else None,
            partner=args.partner,
        )
        page = await ops.notifications(search, limit=args.limit)
        for row in page.items:
            if args.json:
                sys.stdout.write(orjson.dumps(notification_json(row)).decode() + "\n")
            else:
                reason = row.reason.code if row.reason else ""
                sys.stdout.write(
                    f"{row.id}  {_iso(row.received_at)}  {row.partner:<12} "
                    f"{row.status.value:<9} {row.route.rule:<20} {reason}\n"
                )
        return 0

    return with_operations(args, action)


def _show(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        timeline = await ops.timeline(args.id)
        if timeline is None:
            sys.stderr.write(f"bridge: no notification {args.id}\n")
            return 1
        if args.json:
            sys.stdout.write(orjson.dumps(timeline_json(timeline)).decode() + "\n")
        else:
            sys.stdout.write(render_timeline(timeline))
        return 0

    return with_operations(args, action)


def _retry(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        result = await ops.retry(args.id)
        if result is RetryResult.REQUEUED:
            sys.stdout.write(f"{args.id}: queued again; the running bridge picks it up\n")
            return 0
        sys.stderr.write(f"{args.id}: {RETRY_REFUSALS[result]}\n")
        return 1

    return with_operations(args, action)


def _iso(epoch_s: float | None) -> str:
    """A time for people; the number itself when no date can show it. Never raises."""
    if epoch_s is None:
        return "-"
    try:
        return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return f"{epoch_s!r} (out of the calendar's range)"


def render_timeline(timeline: Timeline) -> str:
    """The human view: one line per thing that happened, oldest first."""
    n = timeline.notification
    lines = [
        f"{n.id}  {n.status.value}  partner={n.partner} rule={n.route.rule}",
        f"  workflow {n.route.workflow_id}  vendor_data {n.route.vendor_data!r}  "
        f"trust_review={str(n.route.trust_review).lower()}",
        f"  source {n.source_application_id}/{n.source_session_id}  kind {n.session_kind.value}"
        f"  deadline {_iso(n.deadline)}",
        f"{_iso(n.received_at)}  received",
        # The route was decided at intake and stored with the notification (DESIGN §4).
        f"{_iso(n.received_at)}  routed by rule {n.route.rule} to workflow {n.route.workflow_id}",
    ]
    for a in timeline.attempts:
        status = a.http_status if a.http_status is not None else "no answer"
        result = a.result or "unfinished"
        latency = a.latency_ms if a.latency_ms is not None else "-"
        error = f" {a.error}" if a.error else ""
        lines.append(
            f"{_iso(a.started_at)}  {a.kind.value} #{a.attempt}: {status} {result}"
            f" ({latency} ms){error}"
        )
    if n.finished_at is not None:
        outcome = n.status.value
        if n.reason is not None:
            outcome += f" {n.reason.code}: {n.reason.message}"
        if n.session is not None:
            outcome += f" session {n.session.session_id} ({n.session.status})"
        lines.append(f"{_iso(n.finished_at)}  {outcome}")
    for e in timeline.events:
        lines.append(f"{_iso(e.created_at)}  event {e.type.value} {e.id}")
    for d in timeline.deliveries:
        lines.append(f"  delivery {d.id} -> {d.destination}: {d.status.value} ({d.attempts} tries)")
        for tried in timeline.delivery_attempts:
            if tried.delivery_id == d.id:
                lines.append(
                    f"{_iso(tried.at)}    attempt {tried.attempt}: "
                    f"{tried.http_status or tried.error} ({tried.latency_ms} ms)"
                )
    return "\n".join(lines) + "\n"
