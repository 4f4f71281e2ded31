"""Capturing the bridge's log lines in a test: JSON lines into a ``StringIO``, then parsed."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import orjson

from bridge.observability import configure_logging, reset_logging


@contextlib.contextmanager
def captured_logs(level: str) -> Iterator[io.StringIO]:
    """Log JSON lines at ``level`` and above into the stream yielded; reset logging after."""
    out = io.StringIO()
    configure_logging(level=level, fmt="json", stream=out)
    try:
        yield out
    finally:
        reset_logging()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written to ``stream`` so far, parsed."""
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]
