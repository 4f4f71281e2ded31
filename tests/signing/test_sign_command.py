"""``bridge sign``: its headers verify with the partner's verifier, and errors exit 1."""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bridge import auth, cli, config
from bridge.cli import sign_command
from bridge.signing import decode_whsec
from tests.support.bridge_process import free_port

WHSEC = "whsec_" + base64.b64encode(b"acme-partner-key-0123456789").decode()
EC_PUBLIC = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
ENVIRON = {
    "ACME_WHSEC": WHSEC,
    "GLOBEX_SECRET": "globex-shared-secret",
    "INITECH_SECRET": "initech-shared-secret-of-32-bytes!",
    "HOOLI_KEY": "hooli-key-1-7d2e9a4c",
    "UMBRELLA_PUBLIC_KEY": EC_PUBLIC,
}
CONFIG = """\
didit:
  api_key: test-key
  application_id: 3c5b9a2e-0000-4000-8000-000000000009
server: {host: "%(host)s", port: 9123}
partners:
  acme:
    auth: {scheme: standard-webhooks, secrets: ["${ACME_WHSEC}"]}
  globex:
    auth: {scheme: hmac, secrets: ["${GLOBEX_SECRET}"], algorithm: sha512, encoding: base64,
           signature_header: X-Globex-Signature, timestamp_header: X-Globex-Timestamp}
  plain-hmac:
    auth: {scheme: hmac, secrets: ["${GLOBEX_SECRET}"]}
  initech:
    auth: {scheme: jwt, algorithms: [HS256], key: "${INITECH_SECRET}", issuer: initech,
           audience: our-app, body_hash_claim: body_sha256}
  hooli:
    auth: {scheme: api-key, header: X-Hooli-Key, keys: ["${HOOLI_KEY}"]}
  umbrella:
    auth: {scheme: jwt, algorithms: [ES256], key: "${UMBRELLA_PUBLIC_KEY}"}
rules:
  - name: everything
    then: {workflow_id: 3c5b9a2e-0000-4000-8000-000000000001, vendor_data: "{partner}:{event_id}"}
"""
BODY = '{"share_token": "a.b.c", "event_id": "e-1", "customer": {"name": "Zoë"}}'.encode()
SIGNABLE = ("acme", "globex", "plain-hmac", "initech", "hooli")


@pytest.fixture(name="files")
def _files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("BRIDGE_URL", raising=False)
    config_path = tmp_path / "bridge.yaml"
    config_path.write_text(CONFIG % {"host": "0.0.0.0"})
    body_path = tmp_path / "notification.json"
    body_path.write_bytes(BODY)
    return config_path, body_path


def run_sign(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    parser = argparse.ArgumentParser(prog="bridge")
    sign_command.register(parser.add_subparsers())
    args = parser.parse_args(["sign", *argv])
    code = args.run(args)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def parse_output(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    blank = lines.index("")
    headers = dict(line.split(": ", 1) for line in lines[:blank])
    assert len(lines) == blank + 2  # headers, a blank line, the curl line
    return headers, shlex.split(lines[blank + 1])


class TestSign:
    @pytest.mark.parametrize("partner", SIGNABLE)
    def test_output_verifies_with_the_partners_verifier(
        self, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], partner: str
    ) -> None:
        """The printed headers, and the same headers in the curl line, are accepted at intake."""
        config_path, body_path = files
        code, lines, err = run_sign(
            capsys, "--partner", partner, "--body", str(body_path), "--config", str(config_path)
        )
        assert (code, err) == (0, "")
        headers, curl = parse_output(lines)
        settings = config.load(config_path)
        verifier = auth.verifier_for(settings.partners[partner].auth)
        verifier.verify(body_path.read_bytes(), headers, now=time.time())
        assert curl[:4] == [
            "curl",
            "-X",
            "POST",
            f"http://127.0.0.1:9123/v1/partners/{partner}/shares",
        ]
        sent = dict(curl[i + 1].split(": ", 1) for i, word in enumerate(curl) if word == "-H")
        assert sent == headers
        assert curl[-2:] == ["--data-binary", f"@{body_path}"]

    def test_url_flag_and_environment_twin(
        self,
        files: tuple[Path, Path],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """--url (or $BRIDGE_URL) replaces the address from the config."""
        config_path, body_path = files
        common = ["--partner", "acme", "--body", str(body_path), "--config", str(config_path)]
        _, lines, _ = run_sign(capsys, *common, "--url", "https://bridge.example/")
        assert parse_output(lines)[1][3] == "https://bridge.example/v1/partners/acme/shares"
        monkeypatch.setenv("BRIDGE_URL", "http://10.0.0.7:80")
        _, lines, _ = run_sign(capsys, *common)
        assert parse_output(lines)[1][3] == "http://10.0.0.7:80/v1/partners/acme/shares"

    @pytest.mark.parametrize(
        ("host", "shown"),
        [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("bridge.local", "bridge.local")],
    )
    def test_base_url(self, host: str, shown: str) -> None:
        """A wildcard bind address is shown as loopback; IPv6 gets brackets."""
        server = config.ServerSettings(host=host, port=8080)
        assert sign_command.base_url(server) == f"http://{shown}:8080"


class TestErrors:
    def test_jwt_partner_with_public_key(
        self, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A partner that signs with its private key cannot be signed for: exit 1, and why."""
        config_path, body_path = files
        code, lines, err = run_sign(
            capsys, "--partner", "umbrella", "--body", str(body_path), "--config", str(config_path)
        )
        assert (code, lines) == (1, [])
        assert "umbrella" in err
        assert "private key" in err

    def test_unknown_partner(
        self, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown partner exits 1 and lists the configured ones."""
        config_path, body_path = files
        code, lines, err = run_sign(
            capsys, "--partner", "wayne", "--body", str(body_path), "--config", str(config_path)
        )
        assert (code, lines) == (1, [])
        assert "unknown partner 'wayne'" in err
        assert "acme, globex" in err

    def test_send_to_nothing_exits_1_and_says_where(
        self, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--send prints an id only when the bridge took the notification."""
        config_path, body_path = files
        url = f"http://127.0.0.1:{free_port()}"
        code, lines, err = run_sign(
            capsys, "--partner", "acme", "--body", str(body_path), "--config", str(config_path),
            "--url", url, "--send",
        )  # fmt: skip
        assert (code, lines) == (1, [])
        assert f"cannot reach {url}/v1/partners/acme/shares" in err

    def test_unreadable_body(
        self, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A body file that cannot be read exits 1 naming it."""
        config_path, body_path = files
        missing = body_path.with_name("missing.json")
        code, lines, err = run_sign(
            capsys, "--partner", "acme", "--body", str(missing), "--config", str(config_path)
        )
        assert (code, lines) == (1, [])
        assert str(missing) in err

    def test_invalid_config(
        self,
        files: tuple[Path, Path],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A config that does not load exits 1 with its issues (file and line)."""
        config_path, body_path = files
        monkeypatch.delenv("ACME_WHSEC")
        code, lines, err = run_sign(
            capsys, "--partner", "acme", "--body", str(body_path), "--config", str(config_path)
        )
        assert (code, lines) == (1, [])
        assert f"{config_path}:7:" in err
        assert "ACME_WHSEC" in err
        assert "globex-shared-secret" not in err


class TestEntryPoint:
    def test_registered(self) -> None:
        """``bridge sign`` is one of the CLI's commands."""
        assert "bridge.cli.sign_command" in cli.COMMAND_MODULES

    def test_python_dash_m_bridge_sign(self, files: tuple[Path, Path]) -> None:
        """The real entry point prints verifiable headers and exits 0."""
        config_path, body_path = files
        argv = [
            "sign",
            "--partner",
            "hooli",
            "--body",
            str(body_path),
            "--config",
            str(config_path),
        ]
        done = subprocess.run(
            [sys.executable, "-m", "bridge", *argv],
            capture_output=True,
            text=True,
            env={**os.environ},
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert "X-Hooli-Key: hooli-key-1-7d2e9a4c" in done.stdout.splitlines()


def test_secret_prints_a_fresh_strong_whsec(capsys: pytest.CaptureFixture[str]) -> None:
    secrets = []
    for _ in range(2):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["secret"])
        assert exit_info.value.code == 0
        secrets.append(capsys.readouterr().out.strip())
    assert all(len(decode_whsec(secret)) == 32 for secret in secrets)
    assert secrets[0] != secrets[1]
