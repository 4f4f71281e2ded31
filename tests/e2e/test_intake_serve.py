"""Intake through the real ``bridge serve`` process (uvicorn + httptools): the rows where the
server itself matters (streamed bodies, the commit before 202) and the logs it writes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import jwt
import orjson
import pytest

from bridge.sandbox.control import SandboxControl
from tests.e2e.conftest import MakeBridge
from tests.support.bridge_process import SandboxTarget
from tests.support.read_only import read_rows

pytestmark = pytest.mark.e2e


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_intake_rows_through_the_real_server(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    bridge = make_bridge(max_body_bytes=1_024)
    acme = control.application("acme")["application_id"]
    [token, expired_source] = control.bulk_tokens(acme, target.application_id, 2)
    url = f"{bridge.base_url}/v1/partners/acme/shares"
    http = bridge.http

    unknown = http.post(f"{bridge.base_url}/v1/partners/nobody/shares", content=b"{}")
    assert (unknown.status_code, error_code(unknown)) == (404, "unknown_partner")

    big = http.post(url, content=b"{" + b" " * 2_000 + b"}", headers={"content-type": "x"})
    assert (big.status_code, error_code(big)) == (413, "body_too_large")

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 300

    streamed = http.post(url, content=chunks(), headers=bridge.sign("acme", b"{}"))
    assert "content-length" not in streamed.request.headers
    assert (streamed.status_code, error_code(streamed)) == (413, "body_too_large")

    wrong_type = http.post(url, content=b"{}", headers={"content-type": "text/plain"})
    assert (wrong_type.status_code, error_code(wrong_type)) == (415, "unsupported_media_type")

    unsigned = http.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert (unsigned.status_code, error_code(unsigned)) == (401, "missing_signature")

    claims = jwt.decode(expired_source, options={"verify_signature": False})
    expired = jwt.encode({**claims, "exp": claims["iat"] - 3_600}, "k" * 32)
    stale = bridge.post_share("acme", {"share_token": expired, "customer": "x"})
    assert (stale.status_code, error_code(stale)) == (422, "share_token_expired")

    control.set_faults("import", error_rate=1.0, error_statuses=[503])  # keep it pending
    first = bridge.post_share("acme", {"share_token": token, "customer": "c"}, message_id="m-1")
    assert first.status_code == 202
    notification_id = first.json()["id"]
    # the 202 means committed: another connection sees the row at once
    rows = read_rows(
        bridge.db_path,
        "SELECT partner, vendor_data FROM notifications WHERE id = ?",
        (notification_id,),
    )
    assert rows == [("acme", "acme:c")]

    again = bridge.post_share("acme", {"share_token": token, "customer": "d"})
    assert again.json() == {"id": notification_id, "status": "duplicate"}
    other_partner = bridge.post_share("hooli", {"share_token": token, "customer": "d"})
    assert other_partner.status_code == 202  # claims are unverified: never another's duplicate
    replay = bridge.post_share("acme", {"share_token": token, "customer": "c"}, message_id="m-1")
    assert (replay.status_code, replay.json()["id"]) == (200, notification_id)

    bridge.terminate()
    output = bridge.output()
    for secret in (token, expired):
        assert secret not in output
        assert secret.split(".")[1] not in output
    logged = [
        line
        for line in bridge.log_lines()
        if line.get("event") == "request" and line.get("http_status", 0) >= 400
    ]
    assert {line["outcome"] for line in logged} >= {
        "unknown_partner",
        "body_too_large",
        "unsupported_media_type",
        "missing_signature",
        "share_token_expired",
    }
    assert all(orjson.dumps(line).find(b'share_token":') == -1 for line in logged)


def test_sigterm_drains_and_exits_0_then_the_work_resumes(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget
) -> None:
    bridge = make_bridge()
    control.set_faults("import", error_rate=1.0, error_statuses=[503])
    acme = control.application("acme")["application_id"]
    [token] = control.bulk_tokens(acme, target.application_id, 1)
    notification_id = bridge.post_share("acme", {"share_token": token, "customer": "s"}).json()[
        "id"
    ]
    assert bridge.terminate() == 0
    control.clear_faults()
    bridge.start()
    assert bridge.wait_for([notification_id]) == {notification_id: "imported"}
    assert len(control.redemptions()) == 1
