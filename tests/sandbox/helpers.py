"""Small helpers shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

from bridge.sandbox.control import SandboxControl


def workflow_id(application: dict[str, Any], kind: str) -> str:
    found: str = next(w["workflow_id"] for w in application["workflows"] if w["kind"] == kind)
    return found


def finished_session(
    control: SandboxControl, application: dict[str, Any], *, kind: str, status: str
) -> dict[str, Any]:
    return next(
        s
        for s in control.sessions(application["application_id"])
        if s["session_kind"] == kind and s["status"] == status
    )


def import_body(token: str, workflow: str, **extra: Any) -> dict[str, Any]:
    return {"share_token": token, "workflow_id": workflow, "trust_review": False} | extra
