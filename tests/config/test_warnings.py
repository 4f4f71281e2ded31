"""Config warnings: a setting that loads but leaves replay protection off is said, at its line;
``check-config --strict`` refuses it; ``bridge serve`` logs it at start."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from bridge.cli import main
from bridge.config import Problem, Settings, load_text_with_warnings
from bridge.config import warnings as config_warnings
from tests.config.conftest import APPLICATION_ID, HS256_KEY, PARTNER_KEY, WHSEC
from tests.support.bridge_process import free_port, wait_healthy

REPLAYABLE = f"""\
didit:
  api_key: test-api-key
  application_id: {APPLICATION_ID}
partners:
  acme:
    auth: {{scheme: standard-webhooks, secrets: [{WHSEC}]}}
  globex:
    auth:
      scheme: hmac
      secrets: [{PARTNER_KEY}]
  initech:
    auth: {{scheme: jwt, key: {HS256_KEY}, max_age_s: 120}}
rules:
  - name: everyone
    then:
      workflow_id: 3c5b9a2e-0000-4000-8000-000000000002
      vendor_data: "{{partner}}:{{event_id}}"
"""
PROTECTED = REPLAYABLE.replace(
    f"secrets: [{PARTNER_KEY}]\n", f"secrets: [{PARTNER_KEY}]\n      timestamp_header: X-Ts\n"
).replace("max_age_s: 120}", "max_age_s: 120, body_hash_claim: body_sha256}")


def expected_warnings(path: Path) -> list[str]:
    return [
        f"{path}:8: partners.globex.auth: warning: replay protection is off: a captured request "
        "verifies forever; set timestamp_header so that the MAC covers the time and an old "
        "request is refused",
        f"{path}:12: partners.initech.auth: warning: replay protection is off: a captured JWT is "
        "accepted with any body for max_age_s (120 s); set body_hash_claim so that the "
        "token pins its body, or require_jti: true so that each token is accepted once",
    ]


def check_config(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, list[str], Path]:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["check-config", "--config", str(path), *flags])
    out, err = capsys.readouterr()
    assert isinstance(exit_info.value.code, int)
    return exit_info.value.code, out, err.splitlines(), path


def test_check_config_prints_each_warning_at_its_line_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, path = check_config(REPLAYABLE, tmp_path, capsys)
    assert (code, out) == (0, "ok: 3 partners, 1 rules, 0 destinations\n")
    assert err == expected_warnings(path)


def test_strict_makes_the_warnings_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, path = check_config(REPLAYABLE, tmp_path, capsys, "--strict")
    assert (code, out) == (1, "")
    assert err == [*expected_warnings(path), "--strict: 2 warning(s) count as errors"]


def test_protected_partners_warn_nothing_even_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_config(PROTECTED, tmp_path, capsys, "--strict")[:3] == (
        0,
        "ok: 3 partners, 1 rules, 0 destinations\n",
        [],
    )


def test_a_new_check_is_one_function_in_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism other warnings plug into: a function of Settings, located by its key."""

    def per_rule(settings: Settings) -> Iterator[Problem]:
        for i, rule in enumerate(settings.rules):
            yield ("rules", i, "then", "vendor_data"), f"about {rule.name}"

    monkeypatch.setattr(config_warnings, "CHECKS", (*config_warnings.CHECKS, per_rule))
    loaded = load_text_with_warnings(PROTECTED, source_name="b.yaml")
    assert [str(w) for w in loaded.warnings] == [
        "b.yaml:18: rules[0].then.vendor_data: warning: rule 'everyone': about everyone"
    ]


def test_serve_logs_the_warnings_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(REPLAYABLE + f'store: {{url: "sqlite:///{tmp_path}/bridge.db"}}\n')
    port = free_port()
    command = [sys.executable, "-m", "bridge", "serve", "--config", str(path)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        # A loaded machine starts slowly; a hang still fails.
        wait_healthy(process, f"http://127.0.0.1:{port}", log_path.read_text, timeout_s=60)
    finally:
        process.terminate()
        process.wait(30)
    lines = [orjson.loads(line) for line in log_path.read_bytes().splitlines() if line[:1] == b"{"]
    logged = [line for line in lines if line.get("event") == "config_warning"]
    assert [line["issue"] for line in logged] == expected_warnings(path)
    assert all(line["level"] == "warning" for line in logged)


def test_require_jti_also_turns_the_jwt_warning_off() -> None:
    text = REPLAYABLE.replace("max_age_s: 120}", "max_age_s: 120, require_jti: true}")
    loaded = load_text_with_warnings(text, source_name="b.yaml")
    assert [w.path for w in loaded.warnings] == ["partners.globex.auth"]
    assert loaded.settings.partners["initech"].auth.require_jti  # type: ignore[union-attr]


def test_a_retention_within_a_replay_window_is_said() -> None:
    """A webhook-id (or a required jti) is remembered only while its notification is kept."""
    text = PROTECTED.replace(
        "max_age_s: 120, body_hash_claim", "max_age_s: 120, require_jti: true, body_hash_claim"
    )
    hooks = f"didit_webhooks: {{secrets: [{PARTNER_KEY}]}}\n"  # decisions arrive: see below
    short = load_text_with_warnings(
        text + "store: {retention_days: 0.001}\n" + hooks, source_name="b.yaml"
    )
    assert [str(w) for w in short.warnings] == [
        f"b.yaml:19: store.retention_days: warning: shorter than the {window} s in which partner "
        f"{name}'s requests may be replayed: a replay after its notification was deleted is "
        "accepted as a new notification; keep the retention above it"
        for window, name in ((300, "acme"), (150, "initech"))
    ]
    kept = load_text_with_warnings(
        text + "store: {retention_days: 1}\n" + hooks, source_name="b.yaml"
    )
    assert kept.warnings == ()


def test_a_retention_without_didit_webhooks_is_said() -> None:
    """An imported notification goes only once Didit has decided its session, and only Didit's
    webhooks bring a decision: without them an undecided one is kept forever."""
    text = PROTECTED + "store: {retention_days: 30}\n"
    without = load_text_with_warnings(text, source_name="b.yaml")
    assert [str(w) for w in without.warnings] == [
        "b.yaml:19: store.retention_days: warning: without didit_webhooks no decision of "
        "Didit's reaches the bridge: an imported notification whose session is not decided at "
        "import (In Review, as every session is without trust_review) is never deleted; "
        "configure didit_webhooks"
    ]
    hooks = f"didit_webhooks: {{secrets: [{PARTNER_KEY}]}}\n"
    assert load_text_with_warnings(text + hooks, source_name="b.yaml").warnings == ()
    assert load_text_with_warnings(PROTECTED, source_name="b.yaml").warnings == ()
