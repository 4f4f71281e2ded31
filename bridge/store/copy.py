"""Outgrowing SQLite: copy everything a SQLite store holds into an empty PostgreSQL store.

The SQLite file is first brought to this version's schema (stop the bridge that uses it: the
copy is of a store at rest), then read table by table and written into PostgreSQL in one
transaction, tokens sealed on the way. Work that was running is queued again with its lease
released (its attempts still counted, as after a crash), so the bridge on the copy takes it
over; an import that may have reached Didit keeps its ambiguous attempt, and is reconciled
before it is sent again, exactly as on the SQLite store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bridge.store import queries
from bridge.store._sqlite_connection import connect
from bridge.store.postgres import PostgresStore
from bridge.store.sqlite import SqliteStore

_SQLITE = queries.load_queries("sqlite")


async def copy_sqlite_to_postgres(
    source: Path, target: PostgresStore, *, clock: Callable[[], float]
) -> dict[str, int]:
    """Copy the SQLite store at ``source`` into ``target`` (which must be empty: ValueError
    otherwise); the rows copied per table."""
    await SqliteStore.open(source, clock=clock).close()  # migrated to this version's schema
    reader = connect(source, read_only=True)
    try:
        reader.execute("BEGIN")  # one snapshot for every table

        def rows(table: str) -> Iterator[Sequence[Any]]:
            return (tuple(row) for row in reader.execute(_SQLITE[f"copy_{table}"]))

        copied = await target.copy_in(rows)
        reader.execute("COMMIT")
    finally:
        reader.close()
    return copied
