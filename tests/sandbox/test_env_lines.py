"""``share-bridge sandbox --env``: the export lines config/bridge.sandbox.yaml needs, the same as
the banner prints, and a banner whose direct-redeem example leaves the walk-through's session
alone (Didit imports a session once)."""

from __future__ import annotations

import shlex
import subprocess
import sys

from bridge.sandbox.server import banner
from bridge.sandbox.starter_world import build_starter_world
from bridge.signing import decode_whsec


def exports(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line.strip().startswith("export "):
            name, value = shlex.split(line.strip())[1].split("=", 1)
            found[name] = value
    return found


def test_env_prints_what_the_sandbox_config_reads_and_the_banner_shows() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "bridge", "sandbox", "--env", "--port", "8799", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    values = exports(printed)
    world = build_starter_world(3)
    ours = world.application_named("ours")
    assert values["DIDIT_BASE_URL"] == "http://127.0.0.1:8799"
    assert (values["DIDIT_API_KEY"], values["DIDIT_APPLICATION_ID"]) == (ours.api_key, ours.id)
    assert {values["KYC_WORKFLOW_ID"], values["KYB_WORKFLOW_ID"]} == set(ours.workflows)
    for name in ("ACME_WHSEC", "SINK_WHSEC"):
        assert len(decode_whsec(values[name])) >= 32, f"{name} is a strong secret"
    assert values["ACME_WHSEC"] != values["SINK_WHSEC"]
    session = world.sessions[values["ACME_SESSION_ID"]]
    assert session.status == "Approved"
    assert values["ACME_DIDIT_API_KEY"] == world.applications[session.application_id].api_key

    sheet = banner(world, "http://127.0.0.1:8799", 3)
    assert exports(sheet) == values
    assert 'eval "$(share-bridge sandbox --port 8799 --env)"' in sheet
    # the banner's direct import shares another session: the walk-through's stays importable
    curl = next(line for line in sheet.splitlines() if "/share/ " in line)
    assert values["ACME_SESSION_ID"] not in curl
    assert "already_imported" in sheet
