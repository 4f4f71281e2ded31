"""Fault injection per endpoint, reproducible: each call's fault is a pure function of the seed,
the endpoint, the call's index since the endpoint's faults were set, and the spec."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Endpoint = Literal["import", "share", "list", "decision"]
ENDPOINTS: tuple[Endpoint, ...] = ("import", "share", "list", "decision")
#: How an answer gets lost after the work is done: a 504, the connection dropped without a
#: response, or an answer held back longer than the client waits.
AmbiguousMode = Literal["504", "drop", "slow"]
Kind = Literal["none", "error", "throttle", "ambiguous"]


class FaultSpec(BaseModel):
    """What to inject on one endpoint. The three rates partition one uniform draw per call."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0.0, ge=0)  # added to every call
    jitter_ms: float = Field(default=0.0, ge=0)  # plus uniform [0, jitter_ms)
    error_rate: float = Field(default=0.0, ge=0, le=1)  # answered before the work
    #: 5xx, or 402 (the "Insufficient balance" the reference's MCP server maps, which the
    #: emulated import never answers by itself)
    error_statuses: tuple[int, ...] = Field(default=(500, 502, 503), min_length=1)
    throttle_rate: float = Field(default=0.0, ge=0, le=1)  # an injected 429, before the work
    retry_after_s: int = Field(default=1, ge=0)
    ambiguous_rate: float = Field(default=0.0, ge=0, le=1)  # the work is done, the answer lost
    ambiguous_modes: tuple[AmbiguousMode, ...] = Field(
        default=("504", "drop", "slow"), min_length=1
    )
    slow_delay_s: float = Field(default=5.0, ge=0)  # how long a "slow" answer is held back

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultSpec:
        if self.error_rate + self.throttle_rate + self.ambiguous_rate > 1.0 + 1e-9:
            raise ValueError("error_rate + throttle_rate + ambiguous_rate must not exceed 1")
        if any(s != 402 and not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError("error_statuses must be 5xx or 402")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultDecision:
    index: int
    latency_s: float
    kind: Kind
    status: int | None = None  # the injected 5xx or 429
    retry_after_s: int | None = None
    mode: AmbiguousMode | None = None
    delay_s: float = 0.0  # for the "slow" mode

    @property
    def label(self) -> str | None:
        """How the ledger names the fault: ``error_503``, ``throttle_429``, ``ambiguous_drop``,
        ``latency`` (latency alone), or None."""
        if self.kind == "error":
            return f"error_{self.status}"
        if self.kind == "throttle":
            return "throttle_429"
        if self.kind == "ambiguous":
            return f"ambiguous_{self.mode}"
        return "latency" if self.latency_s > 0 else None

    def as_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "latency_ms": round(self.latency_s * 1000, 3),
            "kind": self.kind,
            "status": self.status,
            "mode": self.mode,
            "label": self.label,
        }


def decide(seed: int, endpoint: str, index: int, spec: FaultSpec) -> FaultDecision:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs and processes.
    rng = random.Random(f"{seed}/{endpoint}/{index}")
    latency_s = (spec.latency_ms + spec.jitter_ms * rng.random()) / 1000
    draw = rng.random()
    pick = rng.random()
    if draw < spec.error_rate:
        status = spec.error_statuses[int(pick * len(spec.error_statuses))]
        return FaultDecision(index=index, latency_s=latency_s, kind="error", status=status)
    draw -= spec.error_rate
    if draw < spec.throttle_rate:
        return FaultDecision(
            index=index,
            latency_s=latency_s,
            kind="throttle",
            status=429,
            retry_after_s=spec.retry_after_s,
        )
    draw -= spec.throttle_rate
    if draw < spec.ambiguous_rate:
        mode = spec.ambiguous_modes[int(pick * len(spec.ambiguous_modes))]
        return FaultDecision(
            index=index, latency_s=latency_s, kind="ambiguous", mode=mode, delay_s=spec.slow_delay_s
        )
    return FaultDecision(index=index, latency_s=latency_s, kind="none")


class FaultInjector:
    """The faults set on each endpoint and how many calls each has seen since."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._specs: dict[str, FaultSpec] = {}
        self._calls: dict[str, int] = {}

    def set(self, endpoint: Endpoint, spec: FaultSpec) -> None:
        """Set (or replace) an endpoint's faults; its schedule starts again at index 0."""
        self._specs[endpoint] = spec
        self._calls[endpoint] = 0

    def clear(self, endpoint: Endpoint | None = None) -> None:
        if endpoint is None:
            self._specs.clear()
            self._calls.clear()
        else:
            self._specs.pop(endpoint, None)
            self._calls.pop(endpoint, None)

    def specs(self) -> dict[str, FaultSpec]:
        return dict(self._specs)

    def next(self, endpoint: str) -> FaultDecision | None:
        """This call's fault, or None when the endpoint has none set (the fast path)."""
        spec = self._specs.get(endpoint)
        if spec is None:
            return None
        index = self._calls[endpoint]
        self._calls[endpoint] = index + 1
        return decide(self.seed, endpoint, index, spec)

    def schedule(self, endpoint: Endpoint, count: int, start: int = 0) -> list[FaultDecision]:
        """The decisions calls ``start .. start+count-1`` get, without using them up."""
        spec = self._specs.get(endpoint)
        if spec is None:
            return []
        return [decide(self.seed, endpoint, index, spec) for index in range(start, start + count)]
