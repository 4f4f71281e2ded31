"""An end-to-end run with known secrets and share tokens: none of them appears in anything the
process printed (stdout and stderr, at debug level) nor in anything it stored as an event, a
delivery or an attempt, nor in what the downstream sink received."""

from __future__ import annotations

import sqlite3

import pytest

from bridge.sandbox.control import SandboxControl
from tests.ops.scenario import rules_to, tokens
from tests.support.bridge_process import ADMIN_TOKEN, PARTNERS, SandboxTarget
from tests.support.fixtures import MakeBridge
from tests.support.recording_sink import SINK_SECRET, RecordingSink
from tests.support.waiting import wait_until

STORED_TEXT = {
    "events": ["body"],
    "deliveries": ["last_error"],
    "delivery_attempts": ["response_excerpt", "error"],
    "import_attempts": ["error", "result"],
    "jobs": ["last_error"],
}


def partner_secrets() -> list[str]:
    found: list[str] = []
    for block in PARTNERS.values():
        for name in ("secrets", "keys"):
            found += list(block.get(name, ()))
        if "key" in block:
            found.append(block["key"])
    return found


def stored_text(db_path: str) -> str:
    """Every stored event body and every recorded error or excerpt, as one text."""
    parts: list[str] = []
    with sqlite3.connect(db_path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        for table, columns in STORED_TEXT.items():
            if table not in tables:
                continue
            known = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column in known:
                    for (value,) in db.execute(f"SELECT {column} FROM {table}"):  # noqa: S608
                        if value is not None:
                            parts.append(value.decode() if isinstance(value, bytes) else str(value))
    db.close()
    return "\n".join(parts)


@pytest.mark.e2e
def test_no_secret_or_token_in_logs_or_events(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget, sink: RecordingSink
) -> None:
    """Every path that touches a secret runs once; the secrets are then searched for."""
    bridge = make_bridge(
        rules=rules_to(target, "crm"),
        destinations={"crm": sink.destination()},
        didit_webhooks=True,
        log_level="debug",
    )
    control.update_application(
        target.application_id, webhook_url=f"{bridge.base_url}/v1/didit/webhooks"
    )
    acme_app = control.application("acme")["application_id"]
    shares = tokens(control, target, 8)
    session = control.create_session(acme_app, status="Approved")["session_id"]
    expired = control.mint_token(session, target.application_id, expires_in_s=-120)
    elsewhere = control.create_application("elsewhere")["application_id"]
    for_others = control.mint_token(session, elsewhere)
    every_token = [*shares, expired, for_others]

    # Each partner's scheme, accepted, and the same message again (a duplicate).
    accepted = []
    for i, partner in enumerate(PARTNERS):
        answer = bridge.post_share(
            partner, {"share_token": shares[i], "customer": f"c{i}"}, message_id=f"m-{partner}"
        )
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["id"])
        replay = {"share_token": shares[i], "customer": f"c{i}"}
        assert bridge.post_share(partner, replay, message_id=f"m-{partner}").status_code == 200
    # Refusals that read the token or the credentials.
    refusals = {
        "token expired": bridge.post_share("acme", {"share_token": expired, "customer": "x"}),
        "not ours": bridge.post_share("acme", {"share_token": for_others, "customer": "x"}),
        "bad signature": bridge.post_share(
            "globex", {"share_token": shares[4], "customer": "x"}, headers={"X-Signature": "00"}
        ),
        "bad bearer": bridge.post_share(
            "initech",
            {"share_token": shares[4], "customer": "x"},
            headers={"Authorization": f"Bearer {shares[5]}"},
        ),
        "no vendor data": bridge.post_share("hooli", {"share_token": shares[4]}),
    }
    assert {name: r.status_code for name, r in refusals.items()} == {
        "token expired": 422,
        "not ours": 422,
        "bad signature": 401,
        "bad bearer": 401,
        "no vendor data": 422,
    }
    bridge.wait_for(accepted)

    # A failed import (no balance) keeps its token for a retry; the admin retries it.
    control.set_faults("import", error_rate=1.0, error_statuses=[402])
    failing = bridge.post_share("acme", {"share_token": shares[6], "customer": "c6"}).json()["id"]
    assert bridge.wait_for([failing]) == {failing: "failed"}
    control.clear_faults()
    assert bridge.admin("POST", f"/notifications/{failing}/retry").status_code == 202
    assert bridge.wait_for([failing], {"imported"}) == {failing: "imported"}

    # Didit tells us of a decision (a signed webhook); the admin API is used with good and bad
    # credentials; the configuration is reloaded.
    imported = bridge.shown(accepted[0])
    assert imported is not None
    control.set_status(imported["notification"]["session"]["session_id"], "Approved")
    assert bridge.admin("GET", f"/notifications/{accepted[0]}").status_code == 200
    wrong = bridge.admin("GET", "/notifications", headers={"Authorization": f"Bearer {shares[7]}"})
    assert wrong.status_code == 401
    assert bridge.admin("POST", "/reload").status_code == 200
    # Secrets pasted where they do not belong end up in logged paths: the redactor's work.
    assert bridge.admin("GET", f"/notifications/{shares[7]}").status_code == 404
    assert bridge.admin("GET", f"/deliveries?destination={ADMIN_TOKEN}").status_code == 200
    misrouted = bridge.http.post(
        f"{bridge.base_url}/v1/partners/{target.api_key}/shares",
        json={"share_token": shares[7]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert misrouted.status_code == 404
    wait_until(lambda: len(sink.bodies) >= 6, "5 outcomes and 1 status update at the sink")
    assert bridge.terminate() == 0

    secrets = {
        "didit api key": target.api_key,
        "didit webhook secret": target.webhook_secret,
        "admin token": ADMIN_TOKEN,
        "destination secret": SINK_SECRET,
        **{f"partner secret {i}": s for i, s in enumerate(partner_secrets())},
        **{f"share token {i}": t for i, t in enumerate(every_token)},
        **{f"share token {i} signature": t.rsplit(".", 1)[1] for i, t in enumerate(every_token)},
    }
    printed = bridge.output()
    assert "share_finished" in printed
    assert "didit_status_updated" in printed
    assert "Traceback" not in printed
    stored = stored_text(str(bridge.db_path))
    assert "share.imported" in stored
    assert "share.status_updated" in stored
    delivered = "\n".join(body.decode() for body in sink.bodies)
    for where, text in {"logs": printed, "store": stored, "deliveries": delivered}.items():
        leaked = [name for name, secret in secrets.items() if secret in text]
        assert leaked == [], f"{leaked} found in the {where}"
