"""Reading a running bridge's SQLite file the way a bystander should: a read-only connection,
which neither migrates nor takes the write lock the server needs (WAL lets it read meanwhile)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def read_rows(db_path: Path, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``query``; none while the server has not created its file yet."""
    if not db_path.exists():
        return []
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return connection.execute(query, parameters).fetchall()
    finally:
        connection.close()
