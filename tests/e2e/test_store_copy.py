"""Moving from SQLite to PostgreSQL as the README says, on a bridge that has real work.

A SQLite bridge against the sandbox ends up holding an imported share with a dead delivery, a
failed share (Didit's 402), a share whose import Didit redeemed but whose answer was lost (an
unresolved ambiguous attempt) and shares still waiting (429s), and is then killed. The README's
"Move from SQLite" commands run as written (a ``share-bridge`` on PATH), a bridge started on the
copy finishes the pending work, and the sandbox's ledger shows every share redeemed exactly once.
Then the README's backup commands (``pg_dump``, ``pg_restore``) run as written, and the restored
database holds the same notifications.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.store.backends import PG_DSN, TOKEN_KEY, check_pg_server
from tests.support.bridge_process import FINAL, SandboxTarget, default_rules, free_port
from tests.support.read_only import read_rows
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

README = Path(__file__).parents[2] / "README.md"
SCHEMA = "bridge"
APP_SECRET = "whsec_" + base64.b64encode(b"store-copy-test-destination-key!").decode()


def readme_commands(paragraph: str) -> list[str]:
    """The command lines of the first ``sh`` block after the paragraph starting so."""
    text = README.read_text()
    start = text.index(paragraph)
    block = re.search(r"```sh\n(.*?)\n\s*```", text[start:], re.DOTALL)
    assert block is not None, paragraph
    lines = [line.strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def server_url(database: str) -> str:
    return PG_DSN.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(name="databases")
def _databases() -> Iterator[tuple[str, str]]:
    """Two new databases: the copy's target and the restore's; dropped after the test."""
    check_pg_server()
    names = [f"scaleout_{uuid.uuid4().hex[:12]}", ""]
    names[1] = names[0] + "_restored"
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        for name in names:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server_url(names[0]), server_url(names[1])
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as connection:
            for name in names:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def shell(lines: list[str], *, cwd: Path, bin_dir: Path) -> list[subprocess.CompletedProcess[str]]:
    """Run each line with bash, ``share-bridge`` being this checkout's; stop at a failure."""
    environ = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    results = []
    for line in lines:
        result = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=environ, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        results.append(result)
    return results


def statuses(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            sql.SQL("SELECT id, status FROM {}").format(sql.Identifier(SCHEMA, "notifications"))
        ).fetchall()
    return dict(rows)


def test_the_readme_move_from_sqlite_finishes_the_work_once(
    control: SandboxControl,
    target: SandboxTarget,
    make_bridge: MakeBridge,
    databases: tuple[str, str],
    tmp_path: Path,
) -> None:
    database, restored = databases
    acme = control.application("acme")
    control.set_quota(write_limit=1_000_000, read_limit=1_000_000)
    tokens = iter(control.bulk_tokens(acme["application_id"], target.application_id, 6))
    nowhere = {"url": f"http://127.0.0.1:{free_port()}/hook", "secrets": [APP_SECRET]}
    rules = [{**r, "then": {**r["then"], "destinations": ["app"]}} for r in default_rules(target)]
    bridge = make_bridge(rules=rules, destinations={"app": {**nowhere, "retry_schedule": ["1s"]}})

    def post(customer: str) -> str:
        response = bridge.post_share("acme", {"share_token": next(tokens), "customer": customer})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    imported = post("imported")
    bridge.wait_for([imported])
    control.set_faults("import", error_rate=1.0, error_statuses=[402])
    failed = post("failed")
    assert bridge.wait_for([failed]) == {failed: "failed"}
    # Redeemed by Didit, the answer lost, and no way to reconcile (the list endpoint throttled).
    control.set_faults("list", throttle_rate=1.0, retry_after_s=1)
    control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["drop"])
    ambiguous = post("ambiguous")
    wait_until(lambda: len(control.redemptions()) == 2, "the lost answer's redemption")
    control.set_faults("import", throttle_rate=1.0, retry_after_s=1)
    waiting = [post("waiting-1"), post("waiting-2")]
    wait_until(
        lambda: bridge.shown(imported),
        "the delivery to nowhere is dead",
        holds=lambda shown: {d["status"] for d in (shown or {}).get("deliveries", [])} == {"dead"},
    )
    assert bridge.statuses()[ambiguous] == "pending"
    bridge.kill()  # a crash: leases held, an attempt without an end

    # The README's steps 2 to 4, with this test's paths and database.
    key = base64.urlsafe_b64encode(TOKEN_KEY).decode()
    bridge.write_config(store={"url": database, "schema": SCHEMA, "token_keys": [key]})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "share-bridge").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bridge "$@"\n')
    (bin_dir / "share-bridge").chmod(0o755)
    steps = [
        line.replace("/data/bridge.db", str(bridge.db_path))
        for line in readme_commands("**Move from SQLite**")
    ]
    assert any("store copy" in line for line in steps)
    results = shell(steps, cwd=bridge.directory, bin_dir=bin_dir)
    copied = next(r.stdout for r, line in zip(results, steps, strict=True) if "store copy" in line)
    counts = dict(re.findall(r"^\s+(\w+)\s+(\d+)$", copied, re.MULTILINE))
    total = counts.pop("total")
    assert set(counts) >= {"notifications", "jobs", "import_attempts", "events", "deliveries"}
    for table, copied_rows in counts.items():  # every row of every table
        [(rows,)] = read_rows(bridge.db_path, f'SELECT count(*) FROM "{table}"')  # noqa: S608
        assert copied_rows == str(rows), table
    assert int(total) == sum(map(int, counts.values()))
    assert statuses(database) == {
        imported: "imported", failed: "failed", ambiguous: "pending",
        waiting[0]: "pending", waiting[1]: "pending",
    }  # fmt: skip

    # Step 5: a bridge on the copy, with Didit answering again.
    control.set_faults("import")
    control.set_faults("list")
    bridge.start()
    everyone = [imported, failed, ambiguous, *waiting]
    try:
        final = wait_until(
            lambda: (
                (found := statuses(database)) and all(s in FINAL for s in found.values()) and found
            ),
            "every notification final on the copy",
            timeout_s=60,
        )
    except TimeoutError as exc:
        raise AssertionError(f"{statuses(database)}\n{bridge.output()[-6000:]}") from exc
    assert final == {**{i: "imported" for i in everyone}, failed: "failed"}
    assert control.double_redemptions() == []
    redeemed = Counter(r["source_session_id"] for r in control.redemptions())
    assert len(redeemed) == 4
    assert set(redeemed.values()) == {1}
    assert bridge.cli("notifications", "show", ambiguous).returncode == 0
    assert "waiting-1" not in bridge.output()

    # The README's backup and restore, as written, against these databases.
    backup = [
        line.replace("postgresql://bridge@db:5432/bridge_restored", restored).replace(
            "postgresql://bridge@db:5432/bridge", database
        )
        for line in readme_commands("**Back up** with `pg_dump`")
    ]
    shell(backup, cwd=tmp_path, bin_dir=bin_dir)
    assert statuses(restored) == statuses(database)
