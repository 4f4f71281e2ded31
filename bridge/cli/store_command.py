"""``bridge store copy``: move a SQLite store into an empty PostgreSQL database.

Stop the bridge that uses the SQLite file first: the copy reads it at rest. The target's
share tokens are sealed with ``$BRIDGE_TOKEN_KEY`` (the key its bridges will list first in
``store.token_keys``). Running work is queued again with its lease released; the copy refuses a
target that holds anything, and prints what it copied.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from bridge.config.keys import decode_token_key
from bridge.errors import StoreUnavailable
from bridge.store.copy import copy_sqlite_to_postgres
from bridge.store.postgres import PostgresStore

_SQLITE = "sqlite:///"
_KEY_VARIABLE = "BRIDGE_TOKEN_KEY"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("store", help="move a store to another backend")
    commands = parser.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    copy = commands.add_parser("copy", help="copy a SQLite store into an empty PostgreSQL database")
    copy.add_argument("--from", dest="source", required=True, help="sqlite:///path/to/bridge.db")
    copy.add_argument("--to", dest="target", required=True, help="postgresql://user@host/db")
    copy.add_argument("--schema", default=None, help="the target's schema (default: public)")
    copy.set_defaults(run=_copy)


def _copy(args: argparse.Namespace) -> int:
    problem, source = _source_path(args.source)
    if problem is None and not args.target.startswith(("postgresql://", "postgres://")):
        problem = "--to must be a postgresql:// URL"
    key_text = os.environ.get(_KEY_VARIABLE)
    if problem is None and not key_text:
        problem = f"${_KEY_VARIABLE} must hold the key that seals the target's tokens"
    if problem is None:
        try:
            key = decode_token_key(key_text or "")
        except ValueError as exc:
            problem = f"${_KEY_VARIABLE} {exc}"
    if problem is not None:
        sys.stderr.write(f"bridge store copy: {problem}\n")
        return 1

    async def main() -> dict[str, int]:
        target = PostgresStore.open(
            args.target, clock=time.time, token_keys=[key], schema=args.schema
        )
        try:
            return await copy_sqlite_to_postgres(source, target, clock=time.time)
        finally:
            await target.close()

    try:
        copied = asyncio.run(main())
    except (ValueError, StoreUnavailable) as exc:
        message = exc.message if isinstance(exc, StoreUnavailable) else str(exc)
        sys.stderr.write(f"bridge store copy: {message}; nothing was copied\n")
        return 1
    counts = ", ".join(f"{count} {table}" for table, count in copied.items())
    sys.stdout.write(f"bridge store copy: copied {counts}\n")
    return 0


def _source_path(url: str) -> tuple[str | None, Path]:
    path = Path(url.removeprefix(_SQLITE))
    if not url.startswith(_SQLITE) or not url.removeprefix(_SQLITE):
        return "--from must be a sqlite:/// URL", path
    if not path.is_file():
        return f"no SQLite store at {path}", path
    return None, path
