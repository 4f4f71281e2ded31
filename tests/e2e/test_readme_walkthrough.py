"""The README's "Try it with the sandbox", run as written: its ``sh`` blocks, read from README.md,
in a fresh directory with the clone's ``config/bridge.sandbox.yaml`` and ``.venv``.

Only the three fixed ports are moved to free ones (in the blocks and the config alike), so the
walk-through can run beside other tests; everything else is the README's text.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bridge_process import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
SECTION = "## Try it with the sandbox"
PORTS = (8790, 8791, 8080)  # the sandbox, the sink, the bridge


def section(text: str) -> str:
    return text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", section(text), re.MULTILINE | re.DOTALL)


def moved(text: str, ports: dict[int, int]) -> str:
    for fixed, free in ports.items():
        text = re.sub(rf"\b{fixed}\b", str(free), text)
    return text


def test_the_walkthrough_runs_as_the_readme_says(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    ports = {fixed: free_port() for fixed in PORTS}
    script = moved("\n".join(blocks(readme, "sh")), ports)
    assert "share-bridge sandbox" in script
    assert "check-config --online" in script
    (tmp_path / "config").mkdir()
    sandbox_config = (ROOT / "config" / "bridge.sandbox.yaml").read_text()
    (tmp_path / "config" / "bridge.sandbox.yaml").write_text(moved(sandbox_config, ports))
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "DIDIT_")) and k != "VIRTUAL_ENV"
    }
    process = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its background jobs share its process group: stopped below
    )
    try:
        out, err = process.communicate(timeout=180)
    finally:
        _stop_group(process.pid)
    logs = {name: _read(tmp_path / name) for name in ("sandbox.log", "sink.log", "bridge.log")}
    context = f"stdout:\n{out}\nstderr:\n{err}\n" + "".join(
        f"--- {name}\n{text[-3000:]}\n" for name, text in logs.items()
    )
    assert process.returncode == 0, context

    # check-config --online printed what the README shows
    [expected] = blocks(readme, "text")
    shown = expected.splitlines()
    lines = out.splitlines()
    assert lines[:3] == shown[:3], context
    ping = r"  ok        destinations\.sink: a signed share\.ping answered 200 in \d+ ms"
    assert re.fullmatch(ping, lines[3]), context
    assert any(line.startswith("  unchecked didit.application_id: ") for line in lines), context

    # the notification was imported and its event reached the sink, verified
    [notification_id] = re.findall(r"^(ntf_\w+)  imported  partner=acme rule=kyc$", out, re.M)
    assert "import #1: 201 imported" in out
    assert re.search(r"delivery dlv_\w+ -> sink: delivered", out), context
    assert f'"notification_id": "{notification_id}"' in logs["sink.log"]
    assert re.search(r"^verified share\.imported evt_\w+ on /hooks/sink$", logs["sink.log"], re.M)
    token = (tmp_path / "notification.json").read_text().split('"share_token": "')[1].split('"')[0]
    assert token.count(".") == 2
    for name, text in logs.items():
        assert token not in text, f"the share token reached {name}"


def _stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(missing)"
