"""The deployment examples hold together: each bridge configuration they ship validates with
exactly the variables they provide, and the files and secrets are wired where the bridge reads
them."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

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
