"""A ``bridge serve`` process with extra configuration: ``OpsBridge`` is a ``BridgeProcess``
whose config also holds any ``extra`` top-level sections (every ``BridgeProcess`` has the admin
token, ``ADMIN_TOKEN``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.bridge_process import ADMIN_TOKEN, BridgeProcess, SandboxTarget

__all__ = ["ADMIN_TOKEN", "OpsBridge"]


class OpsBridge(BridgeProcess):
    """A ``BridgeProcess`` whose config also holds the ``extra`` sections."""

    def __init__(
        self,
        directory: Path,
        target: SandboxTarget,
        *,
        extra: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.extra: dict[str, Any] = dict(extra or {})
        super().__init__(directory, target, **options)

    def write_config(self, **changes: Any) -> None:
        super().write_config(**changes)
        document = yaml.safe_load(self.config_path.read_text())
        document.update(self.extra)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        self._settings = None
