"""Drain: a backlog of 1,000 against a sandbox quota of 600 writes a minute, one bridge on SQLite.

``bridge sandbox`` (quota: 600 writes per API key in any 60 s, as Didit counts) and ``bridge
serve`` (``rate_limit_per_minute: 600``, on a fresh SQLite file) run as real processes on
127.0.0.1. 1,000 share tokens, each for its own source session, are sent to intake at once; the
bench then waits until every notification is final and reads the sandbox's ledgers
(``bench/_drain.py``). The rate is imports over the span from the first import call to the
last plus one interval at the quota's pace; the baseline is the quota itself. It takes about
100 s a round (one round by default).

Targets: at least 95 % of the quota, zero 429s, every notification imported, no source session
redeemed twice.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench import _drain
from bench._bridge_harness import bridge_config, bridge_serve, free_port
from tests.support.read_only import read_rows


def main(argv: Sequence[str] = ()) -> int:
    """Run the benchmark; ``argv`` holds its own options (``python -m bench NAME OPTION ...``)."""
    return _drain.main("python -m bench drain", __doc__ or "", argv, _start, "one bridge, SQLite")


@contextlib.contextmanager
def _start(folder: Path, settings: dict[str, Any]) -> Iterator[_drain.Bridges]:
    port = free_port()
    with bridge_serve(bridge_config(folder, port=port, **settings), port) as bridge:
        yield _drain.Bridges([port], lambda: _statuses(bridge.db_path))


def _statuses(db_path: Path) -> dict[str, int]:
    rows = read_rows(db_path, "SELECT status, count(*) FROM notifications GROUP BY status")
    return {str(status): int(count) for status, count in rows}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
