"""Moving a SQLite store into an empty PostgreSQL store: ``share-bridge store copy``.

When one process is no longer enough, everything the SQLite file holds moves to PostgreSQL:
every table of the SQLite store (migrated to this version first, as ``serve`` would) is written
into the PostgreSQL table of the same name, column by column, matched by name, in one
transaction: the target ends with everything or with nothing. So the copy follows the schemas
as they grow, and a column the target lacks stops it before anything is written, rather than
being dropped.

What changes on the way:

- share tokens are sealed under the target's ``token_keys`` (``notifications.token`` becomes
  ``token_sealed``), bound to their notification as the PostgreSQL store seals them;
- a job that was running when the source stopped (its process crashed) goes back to the
  queue, due at once, with its lease released and its attempt counted, as after a crash. An
  import attempt that has no end stays on record, so the first attempt on PostgreSQL reconciles
  with Didit before it imports again: nothing is redeemed twice.

The copy refuses, with the reason, a source that is missing or that a running bridge is using
(its owner lock files are held), and a target whose tables already hold rows.
"""

from __future__ import annotations

import graphlib
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bridge.errors import BridgeError, StoreUnavailable
from bridge.store import queries
from bridge.store._owners import live_lock_files, owners_directory
from bridge.store._pg_migrations import migrate as migrate_postgres
from bridge.store._sqlite_connection import connect as connect_sqlite
from bridge.store._sqlite_connection import migrate as migrate_sqlite
from bridge.store.token_seal import TokenSeal

_Q = queries.load_queries("copy")
CONNECT_TIMEOUT_S = 10
RELEASED = "lease released by store copy"
# Source columns written under another name in PostgreSQL (the value changes with the name).
_RENAMED: Mapping[tuple[str, str], str] = {("notifications", "token"): "token_sealed"}
# SQLite keeps booleans as 0/1 and has no fixed types: values go to PostgreSQL as its column
# type says.
_CONVERSIONS: Mapping[str, Callable[[Any], Any]] = {
    "boolean": bool,
    "bytea": bytes,
    "double precision": float,
    "real": float,
    "smallint": int,
    "integer": int,
    "bigint": int,
    "text": str,
}

Row = dict[str, Any]


class CopyRefused(BridgeError):
    """The store cannot be copied; nothing was written."""

    code = "copy_refused"


@dataclass(frozen=True, slots=True)
class CopyTarget:
    """The PostgreSQL store to fill: its URL, schema and token keys (the first seals)."""

    url: str
    schema: str
    token_keys: Sequence[bytes]


@dataclass(frozen=True, slots=True)
class _TargetColumn:
    name: str
    data_type: str
    is_identity: bool


@dataclass(frozen=True, slots=True)
class _TablePlan:
    """How one SQLite table's rows become rows of the PostgreSQL table of the same name."""

    table: str
    written: tuple[str, ...]  # target columns, one per source column, in the source's order
    conversions: tuple[Callable[[Any], Any], ...]
    identities: tuple[str, ...]  # identity columns given values: their sequences move past
    has_rowid: bool


async def copy_store(source: Path, target: CopyTarget, *, now: float) -> dict[str, int]:
    """Copy the SQLite store at ``source`` into the empty PostgreSQL store ``target`` (which is
    migrated first); the rows copied per table, parents first.

    Raises ``CopyRefused`` (why, nothing written) or ``StoreUnavailable`` (a database error).
    """
    seal = TokenSeal(target.token_keys)
    source_connection = _open_source(source, now)
    try:
        source_connection.execute("BEGIN")  # one snapshot of every table
        tables = _tables_parents_first(source_connection)
        try:
            async with await psycopg.AsyncConnection.connect(
                target.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                options=f"-c search_path={target.schema}",
                application_name="share-bridge store copy",
            ) as connection:
                await migrate_postgres(connection, target.schema)
                async with connection.transaction():
                    columns = await _target_columns(connection, target.schema)
                    present = [table for table in tables if table in columns]
                    await _refuse_unless_empty(connection, target.schema, present)
                    plans = _plans(source_connection, tables, columns)
                    counts = {}
                    for plan in plans:
                        rows = _source_rows(source_connection, plan, seal=seal, now=now)
                        counts[plan.table] = await _write(connection, target.schema, plan, rows)
                    await _advance_identities(connection, target.schema, plans)
                    return counts
        except psycopg.Error as exc:
            raise StoreUnavailable(f"PostgreSQL: {exc}") from exc
    finally:
        source_connection.close()


def _open_source(path: Path, now: float) -> sqlite3.Connection:
    if not path.is_file():
        raise CopyRefused(f"no SQLite store at {path}")
    if live_lock_files(owners_directory(path)):
        raise CopyRefused(f"a bridge is running on {path}: stop every bridge using it first")
    try:
        connection = connect_sqlite(path)
        migrate_sqlite(connection, now)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read the SQLite store at {path}: {exc}") from exc
    return connection


def _tables_parents_first(connection: sqlite3.Connection) -> list[str]:
    """The store's tables, each after the tables its foreign keys point at."""
    names = [row[0] for row in connection.execute(_Q["sqlite_tables"])]
    graph = {
        name: {row[0] for row in connection.execute(_Q["sqlite_parents"], {"table": name})}
        for name in names
    }
    return list(graphlib.TopologicalSorter(graph).static_order())


async def _target_columns(
    connection: psycopg.AsyncConnection[Any], schema: str
) -> dict[str, dict[str, _TargetColumn]]:
    cursor = await connection.execute(_Q["postgres_columns"], {"schema": schema})
    found: dict[str, dict[str, _TargetColumn]] = {}
    for table, column, data_type, is_identity in await cursor.fetchall():
        found.setdefault(table, {})[column] = _TargetColumn(column, data_type, is_identity)
    return found


def _plans(
    connection: sqlite3.Connection,
    tables: Sequence[str],
    target: Mapping[str, Mapping[str, _TargetColumn]],
) -> list[_TablePlan]:
    """One plan per table; every table or column the target lacks is named at once."""
    lacking: list[str] = []
    plans: list[_TablePlan] = []
    for table in tables:
        columns = target.get(table)
        if columns is None:
            lacking.append(table)
            continue
        source_columns = [row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')]
        written = tuple(_RENAMED.get((table, column), column) for column in source_columns)
        missing = [f"{table}.{column}" for column in written if column not in columns]
        if missing:
            lacking.extend(missing)
            continue
        without_rowid = connection.execute(_Q["sqlite_without_rowid"], {"table": table}).fetchone()
        plans.append(
            _TablePlan(
                table=table,
                written=written,
                conversions=tuple(_conversion(columns[column].data_type) for column in written),
                identities=tuple(column for column in written if columns[column].is_identity),
                has_rowid=not (without_rowid and without_rowid[0]),
            )
        )
    if lacking:
        raise CopyRefused(
            f"the target lacks {', '.join(lacking)}: its schema is older than the source's"
            " (copy with the share-bridge version that last ran on the SQLite store, or newer)"
        )
    return plans


def _conversion(data_type: str) -> Callable[[Any], Any]:
    convert = _CONVERSIONS.get(data_type)
    if convert is None:
        return _unchanged
    return lambda value: None if value is None else convert(value)


def _unchanged(value: Any) -> Any:
    return value


async def _refuse_unless_empty(
    connection: psycopg.AsyncConnection[Any], schema: str, tables: Sequence[str]
) -> None:
    """Hold off every other writer of these tables until the copy commits, and refuse a target
    that already holds rows in any of them."""
    if not tables:
        return
    qualified = [sql.Identifier(schema, table) for table in tables]
    await connection.execute(
        sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.SQL(", ").join(qualified))
    )
    holding = []
    for table, name in zip(tables, qualified, strict=True):
        cursor = await connection.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(name))
        row = await cursor.fetchone()
        if row is not None and row[0]:
            holding.append(table)
    if holding:
        raise CopyRefused(
            f"the target is not empty ({', '.join(holding)} already hold rows): copy into a new"
            " database or schema, never over a store in use"
        )


def _source_rows(
    connection: sqlite3.Connection, plan: _TablePlan, *, seal: TokenSeal, now: float
) -> Iterable[tuple[Any, ...]]:
    order = " ORDER BY rowid" if plan.has_rowid else ""  # events keep their order (seq)
    cursor = connection.execute(f'SELECT * FROM "{plan.table}"{order}')  # noqa: S608 (catalog)
    change = _ROW_CHANGES.get(plan.table)
    for source_row in cursor:
        row = dict(source_row)
        if change is not None:
            change(row, seal, now)
        values = [row[column] for column in plan.written]
        yield tuple(convert(value) for convert, value in zip(plan.conversions, values, strict=True))


def _seal_token(row: Row, seal: TokenSeal, now: float) -> None:
    token = row.pop("token")
    row["token_sealed"] = None if token is None else seal.seal(token, row["id"])


def _release_lease(row: Row, seal: TokenSeal, now: float) -> None:
    if row["status"] == "running":
        row.update(
            status="queued", run_after=now, lease_owner=None, lease_expires_at=None,
            last_error=RELEASED,
        )  # fmt: skip


_ROW_CHANGES: Mapping[str, Callable[[Row, TokenSeal, float], None]] = {
    "notifications": _seal_token,
    "jobs": _release_lease,
}


async def _write(
    connection: psycopg.AsyncConnection[Any],
    schema: str,
    plan: _TablePlan,
    rows: Iterable[tuple[Any, ...]],
) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema, plan.table),
        sql.SQL(", ").join(sql.Identifier(column) for column in plan.written),
    )
    count = 0
    async with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)
            count += 1
    return count


async def _advance_identities(
    connection: psycopg.AsyncConnection[Any], schema: str, plans: Sequence[_TablePlan]
) -> None:
    """Identity columns were given the source's values: their next values come after them."""
    for plan in plans:
        for column in plan.identities:
            await connection.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, {}),"
                    " coalesce(max({}), 1), max({}) IS NOT NULL) FROM {}"
                ).format(
                    sql.Literal(f'"{schema}"."{plan.table}"'),
                    sql.Literal(column),
                    sql.Identifier(column),
                    sql.Identifier(column),
                    sql.Identifier(schema, plan.table),
                )
            )
