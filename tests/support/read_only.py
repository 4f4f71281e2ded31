"""Reading a running bridge's store the way a bystander should: a read-only connection, which
neither migrates nor takes the write lock the server needs (SQLite's WAL lets it read meanwhile;
PostgreSQL reads a snapshot)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg import sql


def read_rows(db_path: Path, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``query``; none while the server has not created its file yet."""
    if not db_path.exists():
        return []
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(query, parameters).fetchall()
    finally:
        connection.close()


def read_pg_rows(url: str, schema: str | None, query: LiteralString) -> list[tuple[Any, ...]]:
    """The rows of ``query`` in ``schema`` (None: public); none while the server has not
    created its tables yet."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET default_transaction_read_only = on")
        path = sql.SQL("SET search_path = {}").format(sql.Identifier(schema or "public"))
        connection.execute(path)
        try:
            return connection.execute(query).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
