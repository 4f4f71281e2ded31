"""Helpers the operations tests share: tokens from the sandbox, rules with a destination, and
reading the Prometheus exposition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bridge.sandbox.control import SandboxControl
from tests.support.bridge_process import SandboxTarget


def tokens(control: SandboxControl, target: SandboxTarget, count: int, **options: Any) -> list[str]:
    """``count`` fresh share tokens from acme's application for ours."""
    acme = control.application("acme")["application_id"]
    return control.bulk_tokens(acme, target.application_id, count, **options)


def rules_to(target: SandboxTarget, *destinations: str) -> list[dict[str, Any]]:
    """One catch-all KYC rule whose outcomes go to ``destinations``."""
    return [
        {
            "name": "all-to-kyc",
            "then": {
                "workflow_id": target.kyc_workflow_id,
                "vendor_data": "{partner}:{payload.customer}",
                "destinations": list(destinations),
            },
        }
    ]


#: A target for in-process tests: nothing is ever called at its base URL.
TARGET = SandboxTarget(
    base_url="http://127.0.0.1:9",
    application_id="6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b0001",
    api_key="sbx_unused",
    kyc_workflow_id="6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b00c1",
    kyb_workflow_id="6a0f7d7e-1f1a-4c55-9a43-0d7e2f1b00b1",
    webhook_secret="whsk_unused",
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Every sample of a Prometheus text exposition: (name, labels) -> value."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset((labels or {}).items())), 0.0)
