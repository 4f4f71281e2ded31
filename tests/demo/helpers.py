"""Small builders for the demo's unit tests."""

from __future__ import annotations

import random

from bridge.demo.plan import Material, Message, build_plan, mix_for
from bridge.types import SessionKind


def fake_token(label: str) -> str:
    """Not a real share token: the plan treats tokens as opaque strings."""
    return f"tok.{label}.sig"


def material_for(count: int) -> Material:
    mix = mix_for(count)
    return Material(
        valid={
            (partner, kind): [
                fake_token(f"{partner}-{kind.value}-{i}")
                for i in range(mix.originals[(partner, kind)])
            ]
            for partner, kind in mix.originals
        },
        source_gone=[("acme", fake_token(f"gone-{i}")) for i in range(mix.source_gone)],
        expired=[fake_token(f"expired-{i}") for i in range(mix.expired)],
        foreign=[fake_token(f"foreign-{i}") for i in range(mix.foreign)],
    )


def plan_for(count: int, seed: int = 1) -> list[Message]:
    return build_plan(mix_for(count), material_for(count), random.Random(seed))


KINDS = (SessionKind.USER, SessionKind.BUSINESS)
