"""Erased means gone from the files, against ``bridge serve`` and the sandbox: after 20 imports,
none of their tokens (nor a distinctive part of one) is left in the raw bytes of any file in
the store's directory, and the store's files are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import SandboxTarget
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

IMPORTS = 20
WITHIN_S = 5.0  # "within a few seconds" of the last outcome


def pieces(token: str) -> list[str]:
    """The token, its claims and signature segments, and every 24-character slice of those (the
    header segment is the same in every token of one issuer: not distinctive)."""
    _header, claims, signature = token.split(".")
    slices = [
        part[i : i + 24] for part in (claims, signature) for i in range(0, len(part) - 23, 24)
    ]
    return [token, claims, signature, *slices]


def found_in(directory: Path, tokens: list[str]) -> list[tuple[str, str]]:
    """(file, piece) for each piece of a token in the raw bytes of a file under ``directory``."""
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [(path.name, p) for t in tokens for p in pieces(t) if p.encode() in data]
    return found


def test_after_20_imports_no_token_bytes_remain_in_any_store_file(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    previous = os.umask(0o022)  # as a default shell: files would be world-readable
    try:
        bridge = make_bridge()
    finally:
        os.umask(previous)
    partner_app = control.application("acme")["application_id"]
    tokens = control.bulk_tokens(partner_app, target.application_id, IMPORTS, session_kind="user")
    answers = [
        bridge.post_share("acme", {"share_token": token, "customer": f"c{n}"})
        for n, token in enumerate(tokens)
    ]
    assert [answer.status_code for answer in answers] == [202] * IMPORTS
    assert found_in(bridge.directory, tokens)  # held while pending: the search finds them

    outcomes = bridge.wait_for([answer.json()["id"] for answer in answers], timeout_s=60.0)
    assert set(outcomes.values()) == {"imported"}
    wait_until(
        lambda: found_in(bridge.directory, tokens),
        "no token left in any file",
        holds=lambda found: not found,
        timeout_s=WITHIN_S,
        poll_s=0.2,
    )

    store_files = [path for path in bridge.directory.iterdir() if path.name.startswith("bridge.db")]
    names = {path.name for path in store_files}
    assert {"bridge.db", "bridge.db-wal", "bridge.db-shm", "bridge.db.owners"} <= names
    for path in [*store_files, *bridge.directory.glob("bridge.db.owners/*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))
