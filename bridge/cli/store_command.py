"""``share-bridge store copy``: move a SQLite store into an empty PostgreSQL store.

The target's URL is ``--to`` (default: the configuration's ``store.url``); its schema and the
keys that seal the share tokens are the configuration's (``store.schema``, ``store.token_keys``),
so the copy is read by bridges started with that configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bridge.cli._common import add_config_argument, load_settings
from bridge.errors import BridgeError

_SQLITE = "sqlite:///"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = subparsers.add_parser("store", help="move the store to another backend")
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    copy = actions.add_parser(
        "copy",
        help="copy a SQLite store into an empty PostgreSQL database (stop the bridges first)",
    )
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///PATH")
    copy.add_argument(
        "--to", dest="target", help="postgresql://... (default: the configuration's store.url)"
    )
    add_config_argument(copy)
    copy.set_defaults(run=_copy)


def _copy(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, prog="share-bridge")
    if settings is None:
        return 1
    problem = None
    url = args.target or settings.store.url
    if not args.source.startswith(_SQLITE) or len(args.source) == len(_SQLITE):
        problem = "--from must be sqlite:///PATH"
    elif not url.startswith(("postgresql://", "postgres://")):
        problem = "the target must be postgresql://... (--to, or store.url in the configuration)"
    elif not settings.store.token_keys:
        problem = f"{args.config}: store.token_keys: the copy seals share tokens under these keys"
    if problem is not None:
        sys.stderr.write(f"share-bridge store copy: {problem}\n")
        return 1
    from bridge.store.copy import CopyTarget, copy_store  # psycopg: the postgres extra

    target = CopyTarget(
        url=url,
        schema=settings.store.schema_ or "public",
        token_keys=settings.store.decoded_token_keys(),
    )
    source = Path(args.source.removeprefix(_SQLITE))
    try:
        counts = asyncio.run(copy_store(source, target, now=time.time()))
    except BridgeError as exc:
        sys.stderr.write(f"share-bridge store copy: {exc.message}\n")
        return 1
    width = max(map(len, counts), default=0)
    lines = [f"  {table:<{width}}  {count:>9}" for table, count in counts.items()]
    sys.stdout.write(
        f"share-bridge: copied {source} into {_where(url, target.schema)}:\n"
        + "\n".join(lines)
        + f"\n  {'total':<{width}}  {sum(counts.values()):>9}\n"
    )
    return 0


def _where(url: str, schema: str) -> str:
    """The target without its credentials: host, port, database and schema."""
    parts = urlsplit(url)
    host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    return f"{parts.scheme}://{host}{parts.path} (schema {schema})"
