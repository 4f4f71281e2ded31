"""Applying the PostgreSQL store's migrations: once, however many processes start together.

Each process that opens the store takes a session advisory lock named after the schema before it
looks at ``schema_version``; the first applies what is missing (each migration in its own
transaction, recorded with it), the others wait on the lock and then find nothing to do.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from bridge.store import queries

_MIGRATIONS = queries.load_migrations("postgres")


def lock_key_text(schema: str) -> str:
    """The advisory lock's name for migrating ``schema`` (hashed by the database)."""
    return f"share-bridge migrate {schema}"


async def migrate(connection: psycopg.AsyncConnection[object], schema: str) -> int:
    """Create ``schema`` if needed and apply the migrations it lacks; return its version.

    ``connection`` is in autocommit mode; its search_path names ``schema``.
    """
    await connection.execute(
        "SELECT pg_advisory_lock(hashtextextended(%s, 0))", [lock_key_text(schema)]
    )
    try:
        await connection.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
        )
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at double precision NOT NULL)"
        )
        # Every migration missing from the record, not only those above the newest (see the
        # SQLite store's migrate).
        cursor = await connection.execute("SELECT version FROM schema_version")
        applied = {int(row[0]) for row in await cursor.fetchall()}  # type: ignore[index]
        current = max(applied, default=0)
        for migration in _MIGRATIONS:
            if migration.version in applied:
                continue
            async with connection.transaction():
                await connection.execute(migration.sql.encode())
                await connection.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (%s, %s, %s)",
                    [migration.version, migration.name, time.time()],
                )
            current = max(current, migration.version)
        return current
    finally:
        await connection.execute(
            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [lock_key_text(schema)]
        )
