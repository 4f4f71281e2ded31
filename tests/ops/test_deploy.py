"""The deployment examples hold together: each bridge configuration they ship validates with
exactly the variables they provide, and the files and secrets are wired where the bridge reads
them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from bridge import config
from bridge.cli.service import STOP_DEADLINE_S

DEPLOY = Path(__file__).parents[2] / "deploy"


def env_file(path: Path) -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {name: value for name, value in pairs}


def seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def test_compose_runs_the_bridge_beside_the_app() -> None:
    """Config mounted where BRIDGE_CONFIG points, secrets from the env file, /data kept."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    bridge = compose["services"]["bridge"]
    assert "app" in compose["services"]
    mounts = dict(volume.split(":")[:2] for volume in bridge["volumes"])  # source:target[:ro]
    assert mounts["./bridge.yaml"] == bridge["environment"]["BRIDGE_CONFIG"]
    assert mounts["bridge-data"] == "/data"
    assert seconds(bridge["stop_grace_period"]) > STOP_DEADLINE_S
    example_env = DEPLOY / (bridge["env_file"] + ".example")  # the real one is never committed
    settings = config.load(DEPLOY / "bridge.yaml", environ=env_file(example_env))
    assert settings.store.url == "sqlite:////data/bridge.db"
    assert settings.destinations["app"].url.startswith("http://app:")
    assert settings.admin is not None
    # Partners reach the public port from anywhere; the ops port only from the host itself.
    published = {mapping.rsplit(":", 1)[1]: mapping for mapping in bridge["ports"]}
    assert published[str(settings.server.port)] == f"{settings.server.port}:{settings.server.port}"
    assert published[str(settings.server.ops_port)].startswith("127.0.0.1:")


def test_kubernetes_pod_runs_the_bridge_as_a_sidecar() -> None:
    """ConfigMap config, Secret env vars that cover every ${VAR}, probes, a grace period."""
    documents: list[dict[str, Any]] = list(
        yaml.safe_load_all((DEPLOY / "kubernetes" / "pod.yaml").read_text())
    )
    by_kind = {d["kind"]: d for d in documents}
    pod, config_map, secret = by_kind["Pod"], by_kind["ConfigMap"], by_kind["Secret"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert set(containers) >= {"app", "bridge"}
    bridge = containers["bridge"]
    env = {item["name"]: item.get("value") for item in bridge["env"]}
    assert [source["secretRef"]["name"] for source in bridge["envFrom"]] == [
        secret["metadata"]["name"]
    ]
    config_path = PurePosixPath(env["BRIDGE_CONFIG"])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in bridge["volumeMounts"]}
    assert (
        volumes[mounts[str(config_path.parent)]]["configMap"]["name"]
        == config_map["metadata"]["name"]
    )
    assert "/data" in mounts
    assert bridge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert bridge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["spec"]["terminationGracePeriodSeconds"] > STOP_DEADLINE_S
    settings = config.load_text(config_map["data"][config_path.name], environ=secret["stringData"])
    assert settings.destinations["app"].url.startswith("http://127.0.0.1:")
    assert settings.admin is not None
    ports = {port["name"]: port["containerPort"] for port in bridge["ports"]}
    assert (ports["http"], ports["ops"]) == (settings.server.port, settings.server.ops_port)
    assert bridge["livenessProbe"]["httpGet"]["port"] == "http"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["ops"])
    # The Service partners reach exposes the public port only.
    service = by_kind["Service"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]


def check_config(config_text: str, environ: dict[str, str], directory: Path) -> None:
    """``bridge check-config`` accepts the configuration with exactly these variables."""
    path = directory / "bridge.yaml"
    path.write_text(config_text)
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "check-config", "--config", str(path)],
        env={"PATH": os.environ["PATH"], **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def variable(text: str) -> str:
    """The name of a value that is one ``${VARIABLE}`` and nothing else."""
    assert (text[:2], text[-1:]) == ("${", "}"), text
    return text[2:-1]


def test_kubernetes_deployment_scales_the_sidecar_on_one_database(tmp_path: Path) -> None:
    """Three pods of app + bridge, the database URL and the token key from the Secret, the
    schema migrated by a Job with the same configuration, one Service on the public port."""
    documents: list[dict[str, Any]] = list(
        yaml.safe_load_all((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    )
    by_kind = {d["kind"]: d for d in documents}
    deployment, config_map, secret = by_kind["Deployment"], by_kind["ConfigMap"], by_kind["Secret"]
    assert deployment["spec"]["replicas"] == 3
    template = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= template["metadata"]["labels"].items()
    )
    containers = {c["name"]: c for c in template["spec"]["containers"]}
    assert set(containers) == {"app", "bridge"}
    bridge = containers["bridge"]
    assert bridge["args"] == ["serve"]
    config_path = PurePosixPath({e["name"]: e["value"] for e in bridge["env"]}["BRIDGE_CONFIG"])
    text = config_map["data"][config_path.name]
    check_config(text, secret["stringData"], tmp_path)
    settings = config.load_text(text, environ=secret["stringData"])
    raw_store = yaml.safe_load(text)["store"]
    assert variable(raw_store["url"]) in secret["stringData"]  # the URL is a secret
    assert [variable(key) for key in raw_store["token_keys"]] == ["BRIDGE_TOKEN_KEY"]
    assert settings.store.is_postgres
    assert settings.store.token_keys
    assert settings.destinations["app"].url.startswith("http://127.0.0.1:")  # the same pod
    assert not any(m["mountPath"] == "/data" for m in bridge["volumeMounts"])  # no SQLite file
    assert template["spec"]["terminationGracePeriodSeconds"] > STOP_DEADLINE_S
    for pod_spec, container in [(template["spec"], bridge), migrate_job(by_kind)]:
        assert [s["secretRef"]["name"] for s in container["envFrom"]] == [
            secret["metadata"]["name"]
        ]
        volumes = {v["name"]: v for v in pod_spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert (
            volumes[mounts[str(config_path.parent)]]["configMap"]["name"]
            == config_map["metadata"]["name"]
        )
    ports = {port["name"]: port["containerPort"] for port in bridge["ports"]}
    assert (ports["http"], ports["ops"]) == (settings.server.port, settings.server.ops_port)
    assert bridge["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert bridge["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(ports["ops"])
    service = by_kind["Service"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]


def migrate_job(by_kind: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The migration Job's pod spec and its one container, which runs ``migrate``."""
    spec = by_kind["Job"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["args"] == ["migrate"]
    return spec, container


def test_compose_runs_two_replicas_on_one_postgresql(tmp_path: Path) -> None:
    """Two bridges and a migration step on the compose file's PostgreSQL, with the variables
    of the env files it names; each replica published, ops on the host's loopback only."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.postgres.yml").read_text())
    services = compose["services"]
    bridge, migrate, postgres = services["bridge"], services["migrate"], services["postgres"]
    assert bridge["deploy"]["replicas"] == 2
    assert migrate["command"] == ["migrate"]
    assert bridge["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert seconds(bridge["stop_grace_period"]) > STOP_DEADLINE_S
    environ: dict[str, str] = {}
    for name in bridge["env_file"]:
        environ.update(env_file(DEPLOY / (name + ".example")))  # the real ones are never committed
    assert migrate["env_file"] == bridge["env_file"]
    config_files = {
        volume.split(":")[0]: volume.split(":")[1]
        for service in (bridge, migrate)
        for volume in service["volumes"]
    }
    [(source, target)] = config_files.items()  # both mount the one config where it is read
    assert (
        target == bridge["environment"]["BRIDGE_CONFIG"] == migrate["environment"]["BRIDGE_CONFIG"]
    )
    text = (DEPLOY / source).read_text()
    check_config(text, environ, tmp_path)
    settings = config.load_text(text, environ=environ)
    database = urlsplit(settings.store.url)
    assert database.hostname in services  # the compose service
    assert (database.username, database.path) == (
        postgres["environment"]["POSTGRES_USER"],
        "/" + postgres["environment"]["POSTGRES_DB"],
    )
    assert database.password == environ["POSTGRES_PASSWORD"]
    assert settings.store.token_keys
    assert settings.destinations["app"].url.startswith("http://app:")
    public, ops = (settings.server.port, settings.server.ops_port)
    published = {
        mapping.rsplit(":", 1)[1]: mapping.rsplit(":", 1)[0] for mapping in bridge["ports"]
    }
    first, last = published[str(public)].split("-")
    assert int(last) - int(first) + 1 == bridge["deploy"]["replicas"]
    assert published[str(ops)].startswith("127.0.0.1:")
