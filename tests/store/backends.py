"""Where a store test's database lives: a SQLite file, or a fresh schema in PostgreSQL.

``BRIDGE_TEST_PG_DSN`` names the PostgreSQL database (default: the local server's ``test``). Each
test gets a schema of its own, migrated by the store it opens and dropped after the test, so
tests stay independent and can run side by side. A missing server fails the tests: it is never
a reason to skip them (``.ci/run`` starts it).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass

import psycopg
from psycopg import sql

from bridge.store import Clock, Store, open_store

PG_DSN = os.environ.get("BRIDGE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN_KEY = bytes(range(32))  # a fixed test key: the tests look for tokens, not for keys


@dataclass(frozen=True)
class StoreTarget:
    """Everything ``open_store`` needs to reach one test's database; JSON for child processes."""

    url: str
    schema: str | None = None

    def open(self, clock: Clock) -> Store:
        return open_store(self.url, clock=clock, schema=self.schema, token_keys=[TOKEN_KEY])

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> StoreTarget:
        return cls(**json.loads(text))


def new_pg_schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


def drop_pg_schema(schema: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def check_pg_server() -> None:
    """Fail (never skip) when the test server cannot be reached."""
    try:
        with psycopg.connect(PG_DSN, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        raise RuntimeError(
            f"PostgreSQL is required by the store tests ({PG_DSN}): {exc}."
            " Start it (.ci/run does) or set BRIDGE_TEST_PG_DSN."
        ) from exc
