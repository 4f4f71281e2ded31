"""The ready world ``share-bridge sandbox`` starts with, built from an empty ``World``."""

from __future__ import annotations

import random

from bridge.sandbox.model import WorkflowKind
from bridge.sandbox.world import World

OURS = "ours"
PARTNERS: tuple[str, ...] = ("acme", "globex", "initech")
#: Fixed, so the same seed gives the same timestamps: 2026-01-01T00:00:00Z.
EPOCH = 1767225600.0

_PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("José", "Zoë", "ESP"),
    ("Łukasz", "Żółć", "POL"),
    ("Søren", "Ærø", "DNK"),
    ("Chloé", "Dubois", "FRA"),
    ("Jürgen", "Müller", "DEU"),
    ("Ana", "Silva", "PRT"),
    ("Mei", "Chen", "SGP"),
    ("Olusegun", "Adébáyọ̀", "NGA"),
)
_COMPANIES: tuple[tuple[str, str], ...] = (
    ("Zoë & Søn ApS", "DNK"),
    ("Müller Logistik GmbH", "DEU"),
    ("Café Olé S.L.", "ESP"),
    ("Northwind Ltd", "GBR"),
    ("Étoile SARL", "FRA"),
)
#: Per partner: (kind, status) of each session, finished ones and a couple that are not.
_SESSION_PLAN: tuple[tuple[WorkflowKind, str], ...] = (
    (WorkflowKind.KYC, "Approved"),
    (WorkflowKind.KYC, "Approved"),
    (WorkflowKind.KYC, "Declined"),
    (WorkflowKind.KYC, "In Review"),
    (WorkflowKind.KYC, "In Progress"),
    (WorkflowKind.KYB, "Approved"),
    (WorkflowKind.KYB, "Declined"),
    (WorkflowKind.KYB, "In Review"),
    (WorkflowKind.KYB, "Not Started"),
)


def build_starter_world(seed: int = 0) -> World:
    """Our application ("ours") with KYC and KYB workflows, and partners "acme", "globex" and
    "initech" with finished sessions of both kinds in several statuses. Deterministic from
    ``seed``."""
    world = World(seed=seed)
    rng = random.Random(f"demo:{seed}")
    created_at = EPOCH
    ours = world.add_application(OURS)
    world.add_workflow(ours.id, WorkflowKind.KYC, "KYC onboarding")
    world.add_workflow(ours.id, WorkflowKind.KYB, "KYB onboarding")
    for name in PARTNERS:
        partner = world.add_application(name)
        workflows = {
            WorkflowKind.KYC: world.add_workflow(partner.id, WorkflowKind.KYC, f"{name} KYC"),
            WorkflowKind.KYB: world.add_workflow(partner.id, WorkflowKind.KYB, f"{name} KYB"),
        }
        for index, (kind, status) in enumerate(_SESSION_PLAN, start=1):
            created_at += rng.randrange(600, 86400)  # newer sessions have higher numbers
            world.add_session(
                partner.id,
                workflow_id=workflows[kind].id,
                status=status,
                created_at=created_at,
                vendor_data=f"{name}-{'user' if kind is WorkflowKind.KYC else 'biz'}-{index}",
                details=sample_details(kind, rng),
            )
    return world


def sample_details(kind: WorkflowKind, rng: random.Random) -> dict[str, str]:
    """A person (KYC) or a company (KYB) for a session's payloads; names are not all ASCII."""
    if kind is WorkflowKind.KYC:
        first, last, country = rng.choice(_PEOPLE)
        return {"first_name": first, "last_name": last, "country": country}
    company, country = rng.choice(_COMPANIES)
    return {
        "company_name": company,
        "registration_number": f"{country}-{rng.randrange(10**6, 10**7)}",
        "country": country,
    }
