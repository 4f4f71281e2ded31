"""Opening an SQLite database the way the store needs it, and migrating its schema."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from bridge.errors import StoreUnavailable
from bridge.store import queries

BUSY_TIMEOUT_MS = 5_000
_MIGRATIONS = queries.load_migrations("sqlite")


def create_owner_only(path: Path) -> None:
    """Create the database file (and its directory) readable by its owner only, whatever the
    umask; tighten an existing file that is not. SQLite gives the ``-wal`` and ``-shm`` files it
    creates the database file's permissions, so they are owner-only too: they hold live tokens.
    """
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            companion = path.with_name(path.name + suffix)
            if companion.stat().st_mode & 0o077:
                companion.chmod(0o600)


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with the durability settings every connection must have."""
    connection = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    try:
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreUnavailable(f"SQLite refused WAL mode (got {mode!r}); use a local disk")
        connection.execute("PRAGMA synchronous = FULL")  # a 202 survives a power cut
        connection.execute("PRAGMA foreign_keys = ON")
        # An erased token is overwritten with zeros in the pages, not left in their free space
        # (the WAL still holds it until a truncating checkpoint: see GroupCommitWriter.scrub).
        connection.execute("PRAGMA secure_delete = ON")
        # Statement journals (a savepoint per operation, multi-row inserts) in memory, not in a
        # temporary file opened and unlinked per transaction: four system calls each.
        connection.execute("PRAGMA temp_store = MEMORY")
        if read_only:
            connection.execute("PRAGMA query_only = ON")
    except BaseException:
        connection.close()
        raise
    return connection


def migrate(connection: sqlite3.Connection, now: float) -> int:
    """Apply the migrations not yet recorded in ``schema_version``; return the version.

    Every migration missing from the record is applied, not only those above the newest: two
    lines of work merged with their numbers interleaved still migrate a store fully."""
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL) STRICT"
    )
    connection.execute("BEGIN IMMEDIATE")  # a second process starting at once waits here
    try:
        applied = {row[0] for row in connection.execute("SELECT version FROM schema_version")}
        current = max(applied, default=0)
        for migration in _MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in _statements(migration.sql):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, now),
            )
            current = max(current, migration.version)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return current


def _statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements
