"""``bridge healthcheck``: exit 0 when the local ``/healthz`` answers 200, else 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bridge.cli import build_parser
from tests.ops.scenario import TARGET
from tests.support.asgi_server import serve_in_thread
from tests.support.bridge_process import free_port, make_config


class Probe:
    status = 200

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"}, self.status)


@pytest.fixture(name="served")
def _served() -> Iterator[tuple[Probe, int]]:
    probe = Probe()
    with serve_in_thread(Starlette(routes=[Route("/healthz", probe.healthz)])) as base_url:
        yield probe, int(base_url.rsplit(":", 1)[1])


def healthcheck(*argv: str) -> int:
    args = build_parser().parse_args(["healthcheck", *argv])
    code: int = args.run(args)
    return code


def test_healthy_and_unhealthy(
    served: tuple[Probe, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """200 is healthy; any other answer, or nothing listening, is not."""
    probe, port = served
    assert healthcheck("--port", str(port)) == 0
    probe.status = 503
    assert healthcheck("--port", str(port)) == 1
    assert "answered 503" in capsys.readouterr().err
    assert healthcheck("--port", str(free_port()), "--timeout", "1") == 1


def test_port_from_the_environment(
    served: tuple[Probe, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """$BRIDGE_PORT wins over the configuration."""
    _probe, port = served
    monkeypatch.setenv("BRIDGE_PORT", str(port))
    assert healthcheck("--config", str(tmp_path / "missing.yaml")) == 0


def test_port_from_the_configuration(
    served: tuple[Probe, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a flag or $BRIDGE_PORT, the configuration's server.port is probed."""
    _probe, port = served
    monkeypatch.delenv("BRIDGE_PORT", raising=False)
    config_path = tmp_path / "bridge.yaml"
    document = make_config(TARGET, db_path=tmp_path / "bridge.db", port=port)
    config_path.write_text(yaml.safe_dump(document))
    assert healthcheck("--config", str(config_path)) == 0
    document["server"]["port"] = free_port()
    config_path.write_text(yaml.safe_dump(document))
    assert healthcheck("--config", str(config_path), "--timeout", "1") == 1
