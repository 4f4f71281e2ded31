"""``destinations``: where outgoing events are delivered, signed, and on which retry schedule."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from bridge.config.fields import ConfigModel, HttpUrl
from bridge.config.keys import secret_problems, whsec_problem
from bridge.config.problems import Problem, raise_problems
from bridge.types import EventType

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")


def parse_duration(text: str) -> float:
    """``"5s"`` -> 5.0 seconds; ``ms``, ``s``, ``m``, ``h`` and ``d`` are understood."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a duration like 5s, 5m or 2h: {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return amount * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}[unit]


class Destination(ConfigModel):
    url: HttpUrl
    secrets: tuple[SecretStr, ...]  # whsec_...; several = dual-signing during rotation
    events: tuple[EventType, ...] = tuple(EventType)
    timeout_s: float = Field(default=15.0, gt=0)
    retry_schedule: tuple[str, ...] = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    max_in_flight: int = Field(default=4, gt=0)

    @property
    def retry_delays_s(self) -> tuple[float, ...]:
        """The retry schedule in seconds: ``("5s", "5m")`` -> ``(5.0, 300.0)``."""
        return tuple(parse_duration(step) for step in self.retry_schedule)

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, secrets: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        raise_problems(secret_problems(secrets, whsec_problem))
        return secrets

    @field_validator("events")
    @classmethod
    def _events(cls, events: tuple[EventType, ...]) -> tuple[EventType, ...]:
        if not events:
            raise ValueError("subscribe to at least one event type")
        raise_problems([((i,), "listed twice") for i, e in enumerate(events) if e in events[:i]])
        return events

    @field_validator("retry_schedule")
    @classmethod
    def _durations(cls, schedule: tuple[str, ...]) -> tuple[str, ...]:
        if not schedule:
            raise ValueError("at least one retry delay is required, like [5s, 5m, 2h]")
        problems: list[Problem] = []
        for i, step in enumerate(schedule):
            try:
                parse_duration(step)
            except ValueError as exc:
                problems.append(((i,), str(exc)))
        raise_problems(problems)
        return schedule
