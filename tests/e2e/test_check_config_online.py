"""``share-bridge check-config --online`` against the sandbox and a verifying sink: placeholders
that pass the offline check (a made-up API key, an endpoint nobody serves, a consumer that does
not know our secret) fail here, and what cannot be checked is said."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.sandbox.sink import Sink, SinkEndpoint
from bridge.sandbox.threaded import serve_in_thread
from bridge.signing import new_whsec
from tests.support.bridge_process import SandboxTarget, free_port

pytestmark = pytest.mark.e2e

OURS, THEIRS = new_whsec(), new_whsec()


def config_file(
    tmp_path: Path, target: SandboxTarget, destinations: dict[str, str], **didit: Any
) -> Path:
    def destination(url: str) -> dict[str, Any]:
        return {"url": url, "secrets": [OURS], "timeout_s": 3}

    document = {
        "didit": {
            "base_url": target.base_url,
            "api_key": target.api_key,
            "application_id": target.application_id,
            **didit,
        },
        "partners": {"acme": {"auth": {"scheme": "standard-webhooks", "secrets": [new_whsec()]}}},
        "rules": [
            {
                "name": "kyc",
                "then": {
                    "workflow_id": target.kyc_workflow_id,
                    "vendor_data": "{partner}:{event_id}",
                    "destinations": list(destinations),
                },
            }
        ],
        "destinations": {name: destination(url) for name, url in destinations.items()},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def check_online(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "check-config", "--online", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def findings(output: str) -> dict[str, str]:
    """subject -> result, from the lines under ``online:``."""
    found = {}
    for line in output.split("online:\n", 1)[1].splitlines():
        result, subject = line.split()[:2]
        found[subject.rstrip(":")] = result
    return found


def test_placeholders_that_pass_offline_fail_online(tmp_path: Path, target: SandboxTarget) -> None:
    sink = Sink([SinkEndpoint("crm", (OURS,)), SinkEndpoint("audit", (THEIRS,))])
    with serve_in_thread(sink.app) as sink_url:
        destinations = {
            "crm": f"{sink_url}/hooks/crm",
            "audit": f"{sink_url}/hooks/audit",  # does not know our secret: 401
            "archive": f"http://127.0.0.1:{free_port()}/hooks",  # nobody listens
        }
        good = config_file(tmp_path, target, destinations)
        offline = subprocess.run(
            [sys.executable, "-m", "bridge", "check-config", "--config", str(good)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert offline.returncode == 0, offline.stderr
        online = check_online(good)
        placeholder = config_file(tmp_path, target, destinations, api_key="sbx_made_up_placeholder")
        bad_key = check_online(placeholder)
        report = sink.report()

    assert online.returncode == 1, online.stdout + online.stderr
    assert findings(online.stdout) == {
        "didit.api_key": "ok",
        "destinations.crm": "ok",
        "destinations.audit": "FAILED",
        "destinations.archive": "FAILED",
        "didit.application_id": "unchecked",
        "rules[0].then.workflow_id": "unchecked",
        "partners.acme": "unchecked",
    }
    assert "HTTP 401" in online.stdout
    # the ping is a signed Standard Webhooks event, verified by an independent implementation
    assert {(r.destination, r.event_type) for r in report.receipts} == {("crm", "share.ping")}
    assert report.rejected == {"audit": 2}

    assert bad_key.returncode == 1
    assert findings(bad_key.stdout)["didit.api_key"] == "FAILED"
    assert "Didit refused the key" in bad_key.stdout
    assert "sbx_made_up_placeholder" not in bad_key.stdout + bad_key.stderr
