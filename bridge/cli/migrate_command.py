"""``share-bridge migrate``: apply the store's schema migrations and exit (a deploy step).

``serve`` applies them too when it starts, under a lock so that replicas starting together
migrate once; running this first keeps a new version's schema change out of the start-up.
"""

from __future__ import annotations

import argparse
import sys

from bridge.cli._common import add_config_argument
from bridge.cli.notifications_command import with_store
from bridge.store import Store, migrate_store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("migrate", help="apply the store's migrations and exit")
    add_config_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    async def action(store: Store) -> int:
        await migrate_store(store)
        sys.stdout.write("share-bridge: the store's schema is up to date\n")
        return 0

    return with_store(args, action)
