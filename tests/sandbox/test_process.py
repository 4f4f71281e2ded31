"""``bridge sandbox`` as integrators run it: a real process on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from bridge.sandbox import build_starter_world
from bridge.sandbox.control import SandboxControl
from bridge.sandbox.model import WorkflowKind
from bridge.sandbox.process import SandboxStartError
from tests.support.sandbox import start_sandbox_process

pytestmark = pytest.mark.e2e


class TestProcess:
    def test_serves_the_ready_world_of_its_seed(self) -> None:
        """The process answers on 127.0.0.1 with build_starter_world(seed), imports work, SIGTERM
        stops it with exit code 0."""
        expected = build_starter_world(5)
        ours = expected.application_named("ours")
        with start_sandbox_process(seed=5) as (base_url, process):
            assert base_url.startswith("http://127.0.0.1:")
            with SandboxControl(base_url) as control:
                served = control.application("ours")
                acme = control.application("acme")
                session = next(
                    s for s in control.sessions(acme["application_id"]) if s["status"] == "Approved"
                )
                token = control.mint_token(session["session_id"], ours.id)
            response = httpx.post(
                f"{base_url}/v3/session/import-shared/",
                json={
                    "share_token": token,
                    "workflow_id": expected.workflow_of_kind(ours.id, _kind(session)).id,
                    "trust_review": False,
                },
                headers={"x-api-key": ours.api_key},
            )
        assert (served["application_id"], served["api_key"]) == (ours.id, ours.api_key)
        assert response.status_code == 201
        assert process.returncode == 0

    def test_a_busy_port_fails_to_start(self) -> None:
        """A second sandbox on the same port reports the failure and its output."""
        with start_sandbox_process(seed=1) as (base_url, _):
            port = int(base_url.rsplit(":", 1)[1])
            with (
                pytest.raises(SandboxStartError, match="cannot bind"),
                start_sandbox_process(port, seed=1, startup_timeout_s=10),
            ):
                pass


class TestCommand:
    def test_bridge_sandbox_prints_what_an_integrator_needs(self) -> None:
        """`bridge sandbox` prints our id, key and workflow ids, partner keys and a curl."""
        world = build_starter_world(9)
        ours = world.application_named("ours")
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "sandbox", "--port", "0", "--seed", "9"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("Control API"):
                    break
        finally:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
        banner = "".join(lines)
        assert re.search(r"listening on http://127\.0\.0\.1:\d+", banner)
        assert ours.id in banner
        assert ours.api_key in banner
        for workflow in ours.workflows.values():
            assert workflow.id in banner
        for partner in ("acme", "globex", "initech"):
            assert world.application_named(partner).api_key in banner
        assert "curl -s -X POST" in banner
        assert "/share/" in banner
        assert process.returncode == 0

    def test_bad_arguments_are_a_usage_error(self) -> None:
        """A negative port exits 2 without starting."""
        result = subprocess.run(
            [sys.executable, "-m", "bridge.sandbox", "--port", "-1"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2


def _kind(session: dict[str, str]) -> WorkflowKind:
    return WorkflowKind.KYC if session["session_kind"] == "user" else WorkflowKind.KYB
