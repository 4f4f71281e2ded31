"""The Dockerfile's steps, run in a fresh virtual environment (no image can be built here): its
build command makes the wheel, its install command installs it with its dependencies, and its
ENTRYPOINT, CMD and HEALTHCHECK commands run with its environment, as the container would."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge import __version__
from tests.support.bridge_process import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per line of a Dockerfile, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def runtime_stage(steps: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    return steps[starts[-1] :]


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), arguments
    assert all(isinstance(a, str) for a in parsed), arguments
    return parsed


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", arguments)))
    return env


def example_environ() -> dict[str, str]:
    """Every variable config/bridge.example.yaml needs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    return {
        "DIDIT_API_KEY": "container-test-api-key",
        "DIDIT_APPLICATION_ID": "11111111-2222-4333-8444-555555555555",
        "DIDIT_BASE_URL": "http://127.0.0.1:9",  # nothing is imported in this test
        "ACME_WHSEC": whsec,
        "GLOBEX_SECRET": "globex-shared-secret",
        "INITECH_PUBLIC_KEY": pem.decode(),
        "HOOLI_KEY": "hooli-api-key-4f7c2a9e",
        "CRM_WHSEC": whsec,
        "AUDIT_WHSEC": whsec,
        "DIDIT_WEBHOOK_SECRET": "didit-webhook-secret",
        "BRIDGE_ADMIN_TOKEN": "container-admin-token",
    }


def run(
    command: list[str], env: Mapping[str, str], cwd: Path, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout_s
    )


@pytest.fixture(name="venv", scope="module")
def _venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the project's wheel installed as the Dockerfile does."""
    steps = instructions(DOCKERFILE.read_text())
    builds = [a for k, a in steps if k == "RUN" and "build --wheel" in a]
    installs = [a for k, a in runtime_stage(steps) if k == "RUN" and "pip install" in a]
    assert builds, "the Dockerfile builds a wheel"
    assert "/wheels/*.whl" in installs[0], "the Dockerfile installs the wheel it built"
    extras = re.search(r"\.whl\)\[([a-z,]+)\]", installs[0])
    assert extras, installs[0]
    assert {"postgres", "otel"} <= set(extras.group(1).split(",")), "PostgreSQL and traces"
    base = tmp_path_factory.mktemp("container")
    wheels = base / "wheels"
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # `python -m build --wheel` in the image; pip runs the same PEP 517 backend here.
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(ROOT)],
        environ,
        base,
    )
    assert built.returncode == 0, built.stderr
    venv = base / "venv"
    created = run([sys.executable, "-m", "venv", str(venv)], environ, base)
    assert created.returncode == 0, created.stderr
    # `pip install --no-cache-dir "/wheels/*.whl[postgres,otel]"`: the wheel and its dependencies.
    wheel = [f"{path}[{extras.group(1)}]" for path in wheels.glob("share_bridge-*.whl")]
    installed = run(  # psycopg's wheels too: slower than the rest on a loaded machine
        [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "-q", *wheel],
        environ,
        base,
        timeout_s=300,
    )
    assert installed.returncode == 0, installed.stderr
    yield venv
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.e2e
def test_the_dockerfile_is_a_runnable_image_recipe(venv: Path, tmp_path: Path) -> None:
    """Its entrypoint and healthcheck work from a clean install, with the image's environment."""
    steps = instructions(DOCKERFILE.read_text())
    stage = runtime_stage(steps)
    keywords = {keyword for keyword, _ in stage}
    assert len([k for k, _ in steps if k == "FROM"]) >= 2, "multi-stage"
    assert all("slim" in a for k, a in steps if k == "FROM"), "slim bases"
    users = [a for k, a in stage if k == "USER"]
    assert users, "runs as a named user"
    assert users[-1] not in ("root", "0"), "runs as a non-root user"
    assert ("VOLUME", '["/data"]') in stage
    assert "EXPOSE" in keywords
    environment = image_env(stage)
    assert environment["PYTHONUNBUFFERED"] == "1"
    entrypoint = exec_form(next(a for k, a in stage if k == "ENTRYPOINT"))
    command = exec_form(next(a for k, a in stage if k == "CMD"))
    healthcheck = next(a for k, a in stage if k == "HEALTHCHECK")
    probe = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert entrypoint == ["share-bridge"]
    assert command == ["serve"]
    assert probe == ["share-bridge", "healthcheck"]

    # Outside the repository, so `share-bridge` can only come from the fresh environment.
    bin_dir = venv / "bin"
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    environ |= example_environ()
    located = run(
        [str(bin_dir / "python"), "-c", "import bridge; print(bridge.__file__)"], environ, tmp_path
    )
    assert located.stdout.startswith(str(venv)), located
    version = run([str(bin_dir / "share-bridge"), "--version"], environ, tmp_path)
    assert (version.returncode, version.stdout.strip()) == (0, f"share-bridge {__version__}")
    exporter = "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http"
    traced = run([str(bin_dir / "python"), "-c", exporter], environ, tmp_path)
    assert traced.returncode == 0, "the image can export traces: " + traced.stderr
    alias = run([str(bin_dir / "bridge"), "--version"], environ, tmp_path)  # the old name works
    assert (alias.returncode, alias.stdout.strip()) == (0, f"share-bridge {__version__}")
    example = ROOT / "config" / "bridge.example.yaml"
    check = run(
        [str(bin_dir / "share-bridge"), "check-config", "--config", str(example)], environ, tmp_path
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unset = {k: v for k, v in environ.items() if k != "HOOLI_KEY"}
    missing = run(
        [str(bin_dir / "share-bridge"), "check-config", "--config", str(example)], unset, tmp_path
    )
    assert missing.returncode == 1
    assert "HOOLI_KEY" in missing.stdout + missing.stderr
    # the wheel carries the example the schema's descriptions come from
    schema = run([str(bin_dir / "share-bridge"), "config-schema"], environ, tmp_path)
    assert schema.returncode == 0, schema.stderr
    trust_review = json.loads(schema.stdout)["$defs"]["RuleThen"]["properties"]["trust_review"]
    assert trust_review["description"].startswith("false: lands In Review")

    # The image's environment, with its paths moved under tmp_path and the port on 127.0.0.1.
    config = tmp_path / "etc" / "bridge.yaml"
    config.parent.mkdir()
    shutil.copy(example, config)  # COPY config/bridge.example.yaml /etc/bridge/bridge.yaml
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    environ |= {
        "BRIDGE_CONFIG": str(config),
        "BRIDGE_STORE_URL": environment["BRIDGE_STORE_URL"].replace("/data/", f"{data}/"),
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_PORT": str(port),
    }
    assert environment["BRIDGE_CONFIG"] == "/etc/bridge/bridge.yaml"
    serve_command = [str(bin_dir / entrypoint[0]), *command]
    probe_command = [str(bin_dir / probe[0]), *probe[1:]]
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(serve_command, env=environ, cwd=data, stdout=log, stderr=log)

    def probed() -> subprocess.CompletedProcess[str]:
        assert server.poll() is None, (tmp_path / "serve.log").read_text()
        return run(probe_command, environ, tmp_path)

    try:
        wait_until(probed, "the healthcheck", holds=lambda done: done.returncode == 0, poll_s=0.1)
        assert (data / "bridge.db").exists(), "the store lives in the data volume"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    stopped = run(probe_command, environ, tmp_path)
    assert stopped.returncode == 1
    assert str(port) in stopped.stderr
