from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.sandbox.control import SandboxControl
from tests.support.sandbox import RunningSandbox, sandbox_in_thread

SEED = 11


@pytest.fixture(scope="package", name="served_sandbox")
def _served_sandbox() -> Iterator[RunningSandbox]:
    with sandbox_in_thread(SEED) as running:
        yield running


@pytest.fixture(name="sandbox")
def _sandbox(served_sandbox: RunningSandbox) -> RunningSandbox:
    """The ready world of seed 11 on real HTTP, reset to its start for each test."""
    served_sandbox.control.reset()
    return served_sandbox


@pytest.fixture(name="control")
def _control(sandbox: RunningSandbox) -> SandboxControl:
    return sandbox.control


@pytest.fixture(name="didit")
def _didit(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    """A plain HTTP client for the Didit endpoints; it never follows redirects."""
    with httpx.Client(base_url=sandbox.base_url, timeout=10.0) as client:
        yield client


@pytest.fixture(name="ours")
def _ours(control: SandboxControl) -> dict[str, Any]:
    return control.application("ours")


@pytest.fixture(name="acme")
def _acme(control: SandboxControl) -> dict[str, Any]:
    return control.application("acme")
