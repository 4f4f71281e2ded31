"""schemathesis, an independent client, checks a live ``bridge serve`` against its own
``/openapi.json``: no 5xx, and no answer (status, content type, headers, body) that the document
does not describe, for the intake, Didit's webhooks, the admin API and health."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import rules_to, tokens
from tests.support.bridge_process import ADMIN_TOKEN, SandboxTarget
from tests.support.fixtures import MakeBridge
from tests.support.recording_sink import RecordingSink

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
        "unsupported_method",
    ]
)


def _schemathesis() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    assert found is not None, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    return found


@pytest.mark.e2e
def test_the_server_keeps_to_its_openapi_document(
    make_bridge: MakeBridge,
    control: SandboxControl,
    target: SandboxTarget,
    sink: RecordingSink,
    tmp_path: Path,
) -> None:
    """Every operation, fuzzed with valid and invalid input, answers as the document says."""
    bridge = make_bridge(
        rules=rules_to(target, "crm"),
        destinations={"crm": sink.destination()},
        didit_webhooks=True,
    )
    # Some data, so the admin routes have notifications and deliveries to show and act on.
    ids = [
        bridge.post_share("acme", {"share_token": token, "customer": f"c{i}"}).json()["id"]
        for i, token in enumerate(tokens(control, target, 3))
    ]
    bridge.wait_for(ids)
    report = tmp_path / "schemathesis"
    run = subprocess.run(
        [
            _schemathesis(),
            "run",
            f"{bridge.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--checks",
            CHECKS,
            "--max-examples",
            "30",
            "--seed",
            "20261125",
            "--no-shrink",
            # One worker: CPython 3.11.7 can fail compiling in two threads at once
            # ("AST constructor recursion depth mismatch", fixed in 3.11.8).
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--report-dir",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    assert "passed" in run.stdout
    output = bridge.output()
    assert "Traceback" not in output, output[-5_000:]
    assert "Exception in ASGI application" not in output
