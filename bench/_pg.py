"""PostgreSQL for the benchmarks: a fresh schema in ``$BRIDGE_TEST_PG_DSN``'s database (the test
server's default when unset), dropped when the block ends, and the ``store`` section of a
``bridge serve`` config that uses it."""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

DSN = os.environ.get("BRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_schema(prefix: str = "bench") -> Iterator[str]:
    """A schema name no one uses yet (the store creates it at its first call); dropped after."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        with psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


def token_key() -> bytes:
    """A fresh 32-byte key to seal share tokens with (nothing outlives the schema)."""
    return os.urandom(32)


def store_section(schema: str, key: bytes, *, pool_size: int = 10) -> dict[str, object]:
    """The ``store`` section of a config on ``schema``; replicas share one ``key``."""
    return {
        "url": DSN,
        "schema": schema,
        "pool_size": pool_size,
        "token_keys": [base64.urlsafe_b64encode(key).decode()],
    }


def query(schema: str, statement: str) -> list[tuple[Any, ...]]:
    """Rows of one read-only statement on ``schema``'s tables."""
    with psycopg.connect(DSN, options=f"-c search_path={schema}") as connection:
        return connection.execute(statement.encode()).fetchall()
