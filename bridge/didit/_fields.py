"""Tolerant readers for fields of Didit's JSON: a wrong type reads as None."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime


def str_or_none(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def datetime_or_none(value: object) -> datetime | None:
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parsed = datetime.fromtimestamp(value, tz=UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def shared_from(value: object) -> str | None:
    if isinstance(value, Mapping):
        return str_or_none(value.get("session_id"))
    return str_or_none(value)
