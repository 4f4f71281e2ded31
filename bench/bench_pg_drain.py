"""Drain with three replicas on PostgreSQL: a backlog of 1,000 against a quota of 600 a minute.

``bridge sandbox`` (quota: 600 writes per API key in any 60 s, as Didit counts) and three
``bridge serve`` replicas on one fresh PostgreSQL schema (``$BRIDGE_TEST_PG_DSN``'s database,
dropped after the round), each configured with ``rate_limit_per_minute: 600``: the quota is the
key's, so the replicas share it through the store and send 600 a minute together, not each.
1,000 share tokens, each for its own source session, are sent at once to the three intakes
(connections dealt out in turn); the bench waits until every notification is final and reads
the sandbox's ledgers (``bench/_drain.py``). The rate is imports over the span from the first
import call to the last plus one interval at the quota's pace; the baseline is the quota itself.
About 100 s a round (one round by default).

Targets: at least 95 % of the quota, zero 429s, every notification imported, no source session
redeemed twice.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench import _drain, _pg
from bench._bridge_harness import bridge_config, bridge_serve, free_port

REPLICAS = 3


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    described = f"{REPLICAS} bridges on one PostgreSQL schema"
    return _drain.main("python -m bench pg_drain", __doc__ or "", argv, _start, described)


@contextlib.contextmanager
def _start(folder: Path, settings: dict[str, Any]) -> Iterator[_drain.Bridges]:
    with contextlib.ExitStack() as stack:
        schema = stack.enter_context(_pg.fresh_schema("bench_drain"))
        store = _pg.store_section(schema, _pg.token_key())
        ports = []
        for replica in range(REPLICAS):
            directory = folder / f"replica-{replica}"
            directory.mkdir()
            port = free_port()
            config = bridge_config(directory, port=port, store=store, **settings)
            stack.enter_context(bridge_serve(config, port))
            ports.append(port)
        yield _drain.Bridges(ports, lambda: _statuses(schema))


def _statuses(schema: str) -> dict[str, int]:
    rows = _pg.query(schema, "SELECT status, count(*) FROM notifications GROUP BY status")
    return {str(status): int(count) for status, count in rows}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
