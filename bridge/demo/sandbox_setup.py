"""Preparing the Didit sandbox for a run: the quota, the faults, and the share tokens of a mix."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bridge.demo.config_template import WRITES_PER_MINUTE, OurApplication
from bridge.demo.plan import PARTNERS, Material, Mix
from bridge.demo.summary import Upstream
from bridge.sandbox.control import SandboxControl

#: Upstream trouble on the import endpoint: answers lost after the import happened (a 504, a
#: dropped connection, an answer slower than the bridge's 1 s timeout), and some 5xx before it.
IMPORT_FAULTS: dict[str, Any] = {
    "latency_ms": 5,
    "jitter_ms": 20,
    "ambiguous_rate": 0.06,
    "ambiguous_modes": ["504", "drop", "slow"],
    "slow_delay_s": 1.5,
    "error_rate": 0.02,
}
_EXPIRED_FOR_S = -300  # well past the 30 s leeway intake allows


def prepare(control: SandboxControl, mix: Mix) -> tuple[OurApplication, Material]:
    """Raise the quota, mint every token the mix needs, then switch the import faults on."""
    control.set_quota(write_limit=WRITES_PER_MINUTE, read_limit=WRITES_PER_MINUTE)
    ours, material = mint(control, mix)
    control.set_faults("import", **IMPORT_FAULTS)
    return ours, material


def mint(control: SandboxControl, mix: Mix) -> tuple[OurApplication, Material]:
    """Every token the mix needs (faults and quota as they are: minting is not an import)."""
    world = control.world()
    ours = OurApplication.from_world(world)
    apps = {app["name"]: app["application_id"] for app in world["applications"]}
    valid = {
        (partner, kind): control.bulk_tokens(
            apps[partner], ours.application_id, count, session_kind=kind.value
        )
        for (partner, kind), count in mix.originals.items()
        if count
    }
    source_gone = []
    for position in range(mix.source_gone):
        partner = PARTNERS[position % len(PARTNERS)]
        session = control.create_session(apps[partner])
        source_gone.append(
            (partner, control.mint_token(session["session_id"], ours.application_id))
        )
        control.delete_session(session["session_id"])
    expired = []
    for position in range(mix.expired):
        session = control.create_session(apps[PARTNERS[position % len(PARTNERS)]])
        token = control.mint_token(
            session["session_id"], ours.application_id, expires_in_s=_EXPIRED_FOR_S
        )
        expired.append(token)
    foreign = control.bulk_tokens(apps["acme"], apps["globex"], mix.foreign) if mix.foreign else []
    return ours, Material(
        valid=valid,
        source_gone=source_gone,
        expired=expired,
        foreign=foreign,
    )


def upstream(control: SandboxControl, ours: OurApplication) -> Upstream:
    """The sandbox's ledgers, summed up."""
    calls = [call for call in control.calls() if call["endpoint"] == "import"]
    faults = Counter(call["fault"] for call in calls if call["fault"] not in (None, "latency"))
    redemptions = [
        r for r in control.redemptions() if r["receiving_application_id"] == ours.application_id
    ]
    return Upstream(
        import_calls=len(calls),
        faults=dict(faults),
        redemptions=len(redemptions),
        double_redemptions=len(control.double_redemptions()),
    )
