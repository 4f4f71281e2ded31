"""Where the store is: one rule for ``sqlite:`` URLs (three slashes relative to the working
directory, four absolute), logged at start, and operator commands that never invent a store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.store import open_store, sqlite_path
from tests.e2e.conftest import MakeBridge

CONFIG = """\
didit: {api_key: "${DIDIT_API_KEY}", application_id: 00000000-0000-4000-8000-000000000001}
store: {url: "%s"}
partners:
  acme: {auth: {scheme: standard-webhooks, secrets: ["${ACME_WHSEC}"]}}
rules: [{name: kyc, then: {workflow_id: 00000000-0000-4000-8000-000000000002, vendor_data: x}}]
destinations:
  crm: {url: "http://127.0.0.1:9/hooks", secrets: ["${CRM_WHSEC}"]}
"""


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``share-bridge *args`` in ``cwd``, with none of the config's secrets in the environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "DIDIT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_three_slashes_are_relative_and_four_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        sqlite_path("sqlite:///var/lib/bridge/bridge.db") == tmp_path / "var/lib/bridge/bridge.db"
    )
    assert sqlite_path("sqlite:////var/lib/bridge/bridge.db") == Path("/var/lib/bridge/bridge.db")
    assert sqlite_path("postgresql://u@h:5432/db") is None


@pytest.mark.parametrize(
    "command",
    [
        ("notifications", "list"),
        ("notifications", "show", "ntf_x"),
        ("retry", "ntf_x"),
        ("redeliver", "dlv_x"),
        ("destinations", "list"),
        ("destinations", "enable", "crm"),
    ],
)
def test_a_command_on_a_store_refuses_one_that_does_not_exist(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG % "sqlite:///var/lib/bridge/bridge.db")
    # retry re-routes, so it reads the rules and needs the whole file: give it its variables
    whsec = "whsec_c2hhcmUtYnJpZGdlLXRlc3QtYWNtZS1zZWNyZXQ="
    secrets = {"DIDIT_API_KEY": "sbx_k", "ACME_WHSEC": whsec, "CRM_WHSEC": whsec}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in secrets.items():
            patch.setenv(name, value)
        result = subprocess.run(
            [sys.executable, "-m", "bridge", *command, "--config", str(config)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    expected = tmp_path / "var/lib/bridge/bridge.db"
    assert result.returncode == 1, result.stderr
    assert f"no store at {expected}" in result.stderr
    assert str(config) in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "var").exists(), "an empty store was created"


def test_read_only_commands_need_no_secret_they_do_not_use(tmp_path: Path) -> None:
    store = tmp_path / "data" / "bridge.db"
    config = tmp_path / "bridge.yaml"
    config.write_text(CONFIG % f"sqlite:///{store}")  # sqlite:////tmp/...: absolute
    asyncio.run(open_store(f"sqlite:///{store}", clock=time.time).close())
    listed = cli(tmp_path, "notifications", "list", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["ID", "RECEIVED", "PARTNER", "STATUS", "RULE", "REASON"]
    destinations = cli(tmp_path, "destinations", "list", "--config", str(config))
    assert destinations.returncode == 0, destinations.stderr
    assert destinations.stdout.startswith("crm ")
    assert "(not configured)" not in destinations.stdout


@pytest.mark.e2e
def test_bridge_started_logs_the_resolved_store_path(make_bridge: MakeBridge) -> None:
    bridge = make_bridge()
    [started] = [line for line in bridge.log_lines() if line.get("event") == "bridge_started"]
    assert started["store"] == str(bridge.db_path.absolute())
