"""``share-bridge notifications list|show`` and ``share-bridge retry``: operations on the store."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import orjson

from bridge import config
from bridge.app.admin_views import notification_json, timeline_json
from bridge.app.operations import Operations
from bridge.app.retrying import RETRY_REFUSALS
from bridge.cli._common import add_config_argument, open_configured_store
from bridge.config import Rule, StoreSettings
from bridge.errors import ConfigError, StoreUnavailable
from bridge.store import NotificationSearch, RetryResult, Store, Timeline, sqlite_path
from bridge.times import iso_utc_or_none
from bridge.types import NotificationStatus, Route

_LIST_ROW = "{:<30}  {:<29}  {:<12} {:<9} {:<20} {}\n"
_LIST_HEADER = _LIST_ROW.format("ID", "RECEIVED", "PARTNER", "STATUS", "RULE", "REASON")


@dataclass(frozen=True, slots=True)
class _CommandSettings:
    """What a command reads of the configuration (``OperatorSettings``)."""

    destinations: tuple[str, ...]
    rules: Sequence[Rule]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notifications = subparsers.add_parser("notifications", help="list or show notifications")
    actions = notifications.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="newest first")
    listing.add_argument(
        "--status", choices=[s.value for s in NotificationStatus], help="only this status"
    )
    listing.add_argument("--partner", help="only this partner's notifications")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_argument(listing)
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", help="one notification with its timeline")
    show.add_argument("id", help="the notification id (ntf_...), as intake answered it")
    show.add_argument("--json", action="store_true", help="the timeline as one JSON object")
    show.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for its outcome and its deliveries to settle (default 0)",
    )
    add_config_argument(show)
    show.set_defaults(run=_show)
    retry = subparsers.add_parser(
        "retry",
        help="re-run a failed notification while its token lives",
        description="Re-run a failed notification with the configuration's current route for "
        "its rule (fix the rule, reload, retry); the timeline shows the old and the new route.",
    )
    retry.add_argument("id", help="the notification id (ntf_...)")
    retry.add_argument(
        "--keep-route",
        action="store_true",
        help="retry with the route it was accepted with, not the configuration's current one",
    )
    add_config_argument(retry)
    retry.set_defaults(run=_retry)


def with_store(args: argparse.Namespace, action: Callable[[Store], Awaitable[int]]) -> int:
    """Open the configured store, run ``action``, close it; config and store errors exit 1.

    Only the ``store`` section is read (no secret is needed), and a SQLite store that does not
    exist is refused rather than created empty: the config is likely not the one serve runs.
    """
    try:
        loaded = config.load_for_operations(args.config)
    except ConfigError as exc:
        return _invalid(exc)
    return _on_store(args, loaded.store, action)


def with_operations(
    args: argparse.Namespace,
    action: Callable[[Operations], Awaitable[int]],
    *,
    with_rules: bool = False,
) -> int:
    """``with_store``, running ``action`` on the operator's ``Operations`` (the admin API's and
    the console's). The destinations' names are read too, and the rules when ``with_rules`` (a
    retry routes with them: that needs the whole configuration)."""
    try:
        loaded = config.load_for_operations(args.config)
        rules = config.load(args.config).rules if with_rules else ()
    except ConfigError as exc:
        return _invalid(exc)
    settings = _CommandSettings(destinations=loaded.destinations, rules=rules)

    def run(store: Store) -> Awaitable[int]:
        return action(Operations(store=store, settings=lambda: settings, log_actions=False))

    return _on_store(args, loaded.store, run)


def _invalid(exc: ConfigError) -> int:
    sys.stderr.write(f"share-bridge: invalid configuration:\n{exc}\n")
    return 1


def _on_store(
    args: argparse.Namespace,
    store_settings: StoreSettings,
    action: Callable[[Store], Awaitable[int]],
) -> int:
    url = store_settings.url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        sys.stderr.write(
            f"share-bridge: no store at {path} (store.url {url!r} in {args.config}); is this "
            "the configuration share-bridge serve runs with? sqlite:/// (three slashes) is "
            "relative to the working directory, sqlite://// (four) absolute\n"
        )
        return 1

    async def main() -> int:
        store = open_configured_store(store_settings, clock=time.time)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        sys.stderr.write(f"share-bridge: {exc.message}\n")
        return 1


def _list(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        search = NotificationSearch(
            status=NotificationStatus(args.status) if args.status else None,
            partner=args.partner,
        )
        page = await ops.notifications(search, limit=args.limit)
        if not args.json:
            sys.stdout.write(_LIST_HEADER)
        for row in page.items:
            if args.json:
                sys.stdout.write(orjson.dumps(notification_json(row)).decode() + "\n")
            else:
                reason = row.reason.code if row.reason else ""
                sys.stdout.write(
                    _LIST_ROW.format(
                        row.id, _iso(row.received_at), row.partner, row.status.value,
                        row.route.rule, reason,
                    )
                )  # fmt: skip
        return 0

    return with_operations(args, action)


def _show(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        timeline = await ops.settled(args.id, wait_s=args.wait)
        if timeline is None:
            sys.stderr.write(f"share-bridge: no notification {args.id}\n")
            return 1
        if args.json:
            sys.stdout.write(orjson.dumps(timeline_json(timeline)).decode() + "\n")
        else:
            sys.stdout.write(render_timeline(timeline))
        return 0

    return with_operations(args, action)


def _retry(args: argparse.Namespace) -> int:
    async def action(ops: Operations) -> int:
        result = await ops.retry(args.id, keep_route=args.keep_route)
        if result is RetryResult.REQUEUED:
            sys.stdout.write(f"{args.id}: queued again; the running bridge picks it up\n")
            return 0
        sys.stderr.write(f"{args.id}: {RETRY_REFUSALS[result]}\n")
        return 1

    return with_operations(args, action, with_rules=True)


def _iso(epoch_s: float | None) -> str:
    """A time for people; the number itself when no date can show it. Never raises."""
    if epoch_s is None:
        return "-"
    shown = iso_utc_or_none(epoch_s, milliseconds=True)
    return f"{epoch_s!r} (out of the calendar's range)" if shown is None else shown


def render_timeline(timeline: Timeline) -> str:
    """The human view: one line per thing that happened, oldest first."""
    n = timeline.notification
    first = timeline.route_changes[0].old if timeline.route_changes else n.route
    lines = [
        f"{n.id}  {n.status.value}  partner={n.partner} rule={n.route.rule}",
        f"  workflow {n.route.workflow_id}  vendor_data {n.route.vendor_data!r}  "
        f"trust_review={str(n.route.trust_review).lower()}",
        f"  source {n.source_application_id}/{n.source_session_id}  kind {n.session_kind.value}"
        f"  deadline {_iso(n.deadline)}",
        f"{_iso(n.received_at)}  received",
        # The route decided at intake; a retry may have changed it since (below).
        f"{_iso(n.received_at)}  routed by rule {first.rule} to workflow {first.workflow_id}",
    ]
    for change in timeline.route_changes:
        lines.append(
            f"{_iso(change.at)}  re-routed by a retry: {_route_text(change.old)} -> "
            f"{_route_text(change.new)}"
        )
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


def _route_text(route: Route) -> str:
    return (
        f"rule {route.rule} workflow {route.workflow_id} "
        f"trust_review={str(route.trust_review).lower()} "
        f"destinations [{', '.join(route.destinations)}]"
    )
