"""SQL kept as data: named query blocks and numbered migrations, read from ``sql/<backend>/``.

A query file holds blocks that start with ``-- name --`` followed by a one-line ``-- description``
(as procrastinate's ``queries.sql``); migrations are ``NNNN_name.sql`` files applied in order.
A block may stand in another as ``{name}`` (a column list several queries share, written once);
SQL itself never uses braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_HEADER = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$")
_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def parse_query_file(text: str) -> dict[str, str]:
    """Split a query file into ``{name: sql}``; the preamble and descriptions are dropped."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), "-- end_of_file --"]:
        header = _HEADER.match(line.strip())
        if header is None:
            is_description = not lines and line.startswith("--")
            if name is not None and not is_description:
                lines.append(line)
            continue
        if name is not None:
            queries[name] = "\n".join(lines).strip()
        name, lines = header.group(1), []
        if name in queries:
            raise ValueError(f"the query {name!r} is named twice")
    if "" in queries.values():
        raise ValueError("a named query is empty")

    def block(reference: re.Match[str]) -> str:
        name = reference.group(1)
        if name not in queries:
            raise ValueError(f"a query refers to {{{name}}}, which is not a block of the file")
        return queries[name]

    return {name: _REFERENCE.sub(block, text) for name, text in queries.items()}


def load_queries(backend: str) -> dict[str, str]:
    """The named queries of one backend (``sql/<backend>/queries.sql``)."""
    path = resources.files("bridge.store") / "sql" / backend / "queries.sql"
    return parse_query_file(path.read_text(encoding="utf-8"))


def load_migrations(backend: str) -> tuple[Migration, ...]:
    """The migrations of one backend, in version order."""
    folder = resources.files("bridge.store") / "sql" / backend
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match is not None:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    if len({m.version for m in found}) != len(found):
        raise ValueError(f"two {backend} migrations share a version number")
    return tuple(found)
