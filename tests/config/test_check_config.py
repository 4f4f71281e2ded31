"""``bridge check-config`` and ``bridge config-schema`` through the real console entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config.descriptions import example_text
from tests.config.conftest import EXAMPLE

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    assert isinstance(exit_info.value.code, int)
    return exit_info.value.code, out, err


def expectations(path: Path) -> list[tuple[int, str, str]]:
    """The ``# expect: LINE: key.path: message`` comments at the top of a broken file."""
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("# expect: "):
            number, key, message = line.removeprefix("# expect: ").split(": ", 2)
            found.append((int(number), key, message))
    return found


def test_there_are_enough_distinct_broken_configs() -> None:
    assert len(BROKEN) >= 15
    assert all(expectations(path) for path in BROKEN), "each broken file states what it expects"


@pytest.mark.parametrize("path", BROKEN, ids=[path.stem for path in BROKEN])
def test_broken_config_is_refused_at_the_right_line_and_key(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("SHARE_BRIDGE_TEST_UNSET")]:
        monkeypatch.delenv(name)
    code, out, err = run(["check-config", "--config", str(path)], capsys)

    assert code == 1
    assert out == ""
    reported = err.splitlines()
    expected = expectations(path)
    assert len(reported) == len(expected), err
    for (line, key, message), text in zip(expected, reported, strict=True):
        prefix = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
        assert text.startswith(prefix), (text, prefix)
        assert message in text.removeprefix(prefix), (text, message)
    assert "hunter2" not in err  # a password in a broken file is never echoed


def test_the_example_passes(
    example_environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in example_environ.items():
        monkeypatch.setenv(name, value)
    code, out, err = run(["check-config", "--config", str(EXAMPLE)], capsys)
    assert (code, err) == (0, "")
    assert out == "ok: 4 partners, 4 rules, 2 destinations\n"


@pytest.mark.parametrize(
    ("template", "warned"),
    [
        ("{payload.customer.id}", True),
        ("acme:{payload.customer.id}", True),
        ("{partner}{payload.customer.id}", True),
        ("{partner}-{payload.customer.id}", True),
        ("{event_id}:{partner}", True),
        ("{partner}:{payload.customer.id}", False),
        ("{partner}", False),
        ("{partner}/{claims.session_id}", False),
    ],
)
def test_a_vendor_data_not_led_by_the_partner_is_a_warning(
    template: str,
    warned: bool,
    example_environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two partners' customers could render the same vendor_data: a warning at its line, and
    check-config still exits 0."""
    for name, value in example_environ.items():
        monkeypatch.setenv(name, value)
    lines = EXAMPLE.read_text().splitlines()
    [number] = [n for n, line in enumerate(lines, 1) if 'vendor_data: "{partner}:{claims.' in line]
    lines[number - 1] = f'      vendor_data: "{template}"'
    config = tmp_path / "bridge.yaml"
    config.write_text("\n".join(lines) + "\n")
    code, out, err = run(["check-config", "--config", str(config)], capsys)
    assert code == 0
    assert out == "ok: 4 partners, 4 rules, 2 destinations\n"
    if warned:
        [warning] = err.splitlines()
        assert warning.startswith(f"{config}:{number}: rules[3].then.vendor_data: warning: ")
        assert "{partner}" in warning
    else:
        assert err == ""


def test_the_config_defaults_to_bridge_config_variable(
    example_environ: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """$BRIDGE_CONFIG names the file when --config is not given (read when the parser is built)."""
    for name, value in {**example_environ, "BRIDGE_CONFIG": str(EXAMPLE)}.items():
        monkeypatch.setenv(name, value)
    code, out, _ = run(["check-config"], capsys)
    assert code == 0
    assert out.startswith("ok: ")


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_a_missing_file_is_exit_1_with_a_clear_message_and_the_same_hint(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run([command, "--config", str(missing)], capsys)
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert f"{missing}: cannot read the file: No such file or directory" in lines
    assert lines[-1] == (
        "hint: pass --config PATH or set BRIDGE_CONFIG (start from config/bridge.example.yaml)"
    )


def test_secrets_never_reach_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "didit: {api_key: '${K}', application_id: '${K}'}\n"
        "partners:\n  acme:\n    auth: {scheme: standard-webhooks, secrets: ['${K}']}\n"
        "rules: [{name: r, then: {workflow_id: '${K}', vendor_data: '{partner}'}}]\n"
        "admin: {token: 5}\n"
    )
    monkeypatch.setenv("K", "sup3r-s3cret-value")
    code, _, err = run(["check-config", "--config", str(config)], capsys)
    assert code == 1
    assert len(err.splitlines()) == 4  # application_id, the secret, workflow_id, admin.token
    assert "sup3r-s3cret-value" not in err


def test_the_console_script_runs_check_config(
    example_environ: dict[str, str], tmp_path: Path
) -> None:
    """The installed ``share-bridge`` entry point, in a real process."""
    bridge = Path(sys.executable).with_name("share-bridge")
    ok = subprocess.run(
        [bridge, "check-config", "--config", str(EXAMPLE)],
        env={"PATH": os.environ.get("PATH", ""), **example_environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (
        0,
        "ok: 4 partners, 4 rules, 2 destinations\n",
        "",
    )
    broken = subprocess.run(
        [bridge, "check-config", "--config", str(EXAMPLE)],
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1
    assert f"{EXAMPLE}:14: didit.api_key: environment variable DIDIT_API_KEY is not set" in (
        broken.stderr.splitlines()
    )


def test_config_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["config-schema"], capsys)
    schema = json.loads(out)
    assert (code, err) == (0, "")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {
        "didit", "store", "server", "partners", "rules", "destinations", "didit_webhooks",
        "admin", "logging", "telemetry",
    }  # fmt: skip
    assert set(schema["required"]) == {"didit", "partners", "rules"}
    assert schema["additionalProperties"] is False
    schemes = {
        definition["properties"]["scheme"]["const"]
        for definition in schema["$defs"].values()
        if "scheme" in definition.get("properties", {})
    }
    assert schemes == {"standard-webhooks", "hmac", "jwt", "api-key"}


def test_every_key_in_the_schema_is_described_by_the_examples_comment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["config-schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    models = [schema, *schema["$defs"].values()]
    undescribed = [
        f"{model.get('title')}.{key}"
        for model in models
        for key, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []
    example = EXAMPLE.read_text()
    assert example_text() == example  # the package's copy is the example itself
    line = next(ln for ln in example.splitlines() if ln.strip().startswith("trust_review: false"))
    trust_review = schema["$defs"]["RuleThen"]["properties"]["trust_review"]
    assert trust_review["description"] == line.split("# ", 1)[1].strip()
    keys = schema["$defs"]["JwtAuth"]["properties"]["keys"]  # a key the example comments out
    assert keys["description"] == "more keys, while rotating (same forms as key)"


def test_git_ignores_the_operators_configuration_but_not_the_shipped_ones() -> None:
    """``config/bridge.yaml`` holds a deployment's choices: never committed by accident."""
    root = EXAMPLE.parents[1]  # a git checkout, as everywhere the suite runs (CI clones)

    def ignored(path: str) -> bool:
        done = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr
        return done.returncode == 0

    assert ignored("config/bridge.yaml")
    assert not ignored("config/bridge.example.yaml")
    assert not ignored("config/samples/acme-kyc.json")
    assert not ignored("config/samples/example.env")
