"""The README's walk-throughs, run as written: the ``sh`` blocks of a section, read from
README.md, in a fresh directory with the clone's ``config/`` files they use and ``.venv``.

"Try it with the sandbox": only the three fixed ports are moved to free ones (in the blocks and
the config alike), so the walk-through can run beside other tests; everything else is the
README's text. "Configuration walk-through": ``share-bridge route`` on the example configuration
and the samples in ``config/samples/``, and the output the README quotes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bridge_process import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
SECTION = "## Try it with the sandbox"
CONFIGURATION = "## Configuration walk-through"
PORTS = (8790, 8791, 8080)  # the sandbox, the sink, the bridge


def section(text: str, title: str = SECTION) -> str:
    return text.split(f"\n{title}\n", 1)[1].split("\n## ", 1)[0]


def blocks(text: str, language: str, title: str = SECTION) -> list[str]:
    found = re.findall(rf"^```{language}\n(.*?)^```", section(text, title), re.M | re.S)
    return list(found)


def clean_environment() -> dict[str, str]:
    """This shell's environment without the bridge's own variables: the README sets its own."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "DIDIT_")) and k != "VIRTUAL_ENV"
    }


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
    process = subprocess.Popen(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=clean_environment(),
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


def test_the_route_examples_run_as_the_readme_says(tmp_path: Path) -> None:
    """The samples route as the comments say, and the miss is explained as the README quotes."""
    readme = (ROOT / "README.md").read_text()
    [script] = blocks(readme, "sh", CONFIGURATION)
    assert "--claims" in script
    shutil.copytree(ROOT / "config" / "samples", tmp_path / "config" / "samples")
    shutil.copy(ROOT / "config" / "bridge.example.yaml", tmp_path / "config")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=tmp_path,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    context = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode == 0, context
    runs = done.stdout.split("\npartner       ")
    assert len(runs) == 3, context
    for run, comment in zip(runs, re.findall(r"# rule (\S+)$", script, re.M), strict=False):
        assert f"\n  rule          {comment}\n" in run, context
        assert "would accept (202)" in run.splitlines()[-1], context
    assert "TEST" not in runs[0] + runs[1]
    assert done.stdout.rstrip().endswith("refused: exit 1"), context
    [quoted] = blocks(readme, "text", CONFIGURATION)
    shown = runs[2].splitlines()
    for line in quoted.splitlines():
        if line.strip() != "...":
            assert line in shown, f"{line!r} is not in:\n{runs[2]}"


def _stop_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else "(missing)"
