"""A ``bridge serve`` process with the admin API on: ``OpsBridge`` is a ``BridgeProcess`` whose
config also holds ``admin.token`` (``ADMIN_TOKEN``) and any ``extra`` top-level sections, and
whose ``admin(method, path)`` calls ``/admin/v1{path}`` with the token."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.bridge_process import BridgeProcess, SandboxTarget

__all__ = ["ADMIN_TOKEN", "OpsBridge"]

ADMIN_TOKEN = "adm-0f3b8c2e9d7a41b6a5c4e3f2d1c0b9a8"


class OpsBridge(BridgeProcess):
    """A ``BridgeProcess`` whose config also holds ``admin.token`` and the ``extra`` sections."""

    def __init__(
        self,
        directory: Path,
        target: SandboxTarget,
        *,
        extra: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.extra: dict[str, Any] = {"admin": {"token": ADMIN_TOKEN}, **(extra or {})}
        super().__init__(directory, target, **options)

    def write_config(self, **changes: Any) -> None:
        super().write_config(**changes)
        document = yaml.safe_load(self.config_path.read_text())
        document.update(self.extra)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        self._settings = None

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call ``/admin/v1{path}`` with the admin token."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return self.http.request(
            method, f"{self.base_url}/admin/v1{path}", headers=headers, **kwargs
        )
