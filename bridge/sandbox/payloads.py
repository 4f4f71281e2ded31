"""The JSON shapes Didit answers with, built from the world's records (reference §1.2, §4, §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bridge.sandbox.model import Application, Session, SessionKind, Workflow


def iso(epoch: float) -> str:
    """Didit's timestamp form, as in the reference's examples: ``2026-05-17T08:42:11Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def imported_session(session: Session) -> dict[str, Any]:
    """The 201 body of ``import-shared``: the documented keys plus ``session_kind``."""
    return {
        "session_id": session.id,
        "session_number": session.number,
        "session_url": None,
        "status": session.status,
        "workflow_id": session.workflow_id,
        "vendor_data": session.vendor_data,
        "created_at": iso(session.created_at),
        "expires_at": iso(session.expires_at),
        "session_kind": session.kind.value,
    }


def list_row(session: Session, workflow: Workflow | None) -> dict[str, Any]:
    """One row of ``GET /v3/sessions/``; KYC and KYB rows add different keys."""
    row: dict[str, Any] = {
        "session_id": session.id,
        "session_kind": session.kind.value,
        "session_number": session.number,
        "status": session.status,
        "vendor_data": session.vendor_data,
        "workflow_id": session.workflow_id,
        "created_at": iso(session.created_at),
        "country": session.details.get("country"),
    }
    if session.kind is SessionKind.USER:
        row |= {
            "portrait_image": None,
            "document_type": "Passport",
            "full_name": _full_name(session),
            "features": [
                {"feature": feature, "status": session.status} for feature in _KYC_FEATURES
            ],
        }
    else:
        row |= {
            "workflow_type": "KYB",
            "workflow_label": workflow.label if workflow else None,
            "company_name": session.details.get("company_name"),
            "registration_number": session.details.get("registration_number"),
        }
    return row


def decision(session: Session) -> dict[str, Any]:
    """``GET /v3/session/{id}/decision/``: the v3 shape, plural feature arrays. Scores are floats
    with integer values on purpose: Didit's V2 signature shortens them."""
    body: dict[str, Any] = {
        "session_id": session.id,
        "session_kind": session.kind.value,
        "session_number": session.number,
        "session_url": None,
        "status": session.status,
        "environment": "sandbox",
        "workflow_id": session.workflow_id,
        "vendor_data": session.vendor_data,
        "metadata": None,
        "expected_details": None,
        "contact_details": None,
        "callback": None,
        "reviews": [],
        "created_at": iso(session.created_at),
        "expires_at": iso(session.expires_at),
    }
    if session.kind is SessionKind.USER:
        body |= {
            "features": list(_KYC_FEATURES),
            "id_verifications": [
                {
                    "node_id": "feature_ocr",
                    "status": session.status,
                    "document_type": "Passport",
                    "first_name": session.details.get("first_name"),
                    "last_name": session.details.get("last_name"),
                    "full_name": _full_name(session),
                    "issuing_state": session.details.get("country"),
                }
            ],
            "liveness_checks": [
                {"node_id": "feature_liveness", "status": session.status, "score": 97.0}
            ],
            "face_matches": [{"node_id": "feature_face", "status": session.status, "score": 100.0}],
        }
    else:
        body |= {
            "features": ["KYB_REGISTRY", "AML"],
            "registry_checks": [
                {
                    "node_id": "feature_registry",
                    "status": session.status,
                    "company_name": session.details.get("company_name"),
                    "registration_number": session.details.get("registration_number"),
                    "country": session.details.get("country"),
                }
            ],
            "aml_screenings": [
                {"node_id": "feature_aml", "status": session.status, "total_hits": 0, "score": 0.0}
            ],
        }
    return body


def webhook_envelope(session: Session, *, now: float) -> dict[str, Any]:
    """A ``status.updated`` webhook body: the flat v2/v3 envelope (reference §3.4)."""
    body: dict[str, Any] = {
        "session_id": session.id,
        "status": session.status,
        "webhook_type": "status.updated",
        "created_at": int(now),
        "timestamp": int(now),
        "workflow_id": session.workflow_id,
        "vendor_data": session.vendor_data,
        "metadata": None,
        "session_kind": session.kind.value,
        "decision": decision(session),
    }
    if session.kind is SessionKind.BUSINESS:
        body["business_session_id"] = session.id
    return body


def control_session(session: Session) -> dict[str, Any]:
    """The control API's full view, including what Didit's payloads may not show."""
    return {
        "session_id": session.id,
        "session_number": session.number,
        "session_kind": session.kind.value,
        "status": session.status,
        "vendor_data": session.vendor_data,
        "workflow_id": session.workflow_id,
        "application_id": session.application_id,
        "created_at": iso(session.created_at),
        "expires_at": iso(session.expires_at),
        "shared_from_session": session.shared_from_session,
        "entity_id": session.entity_id,
        "details": dict(session.details),
    }


def control_application(application: Application) -> dict[str, Any]:
    return {
        "application_id": application.id,
        "name": application.name,
        "api_key": application.api_key,
        "credits": application.credits,
        "webhook_url": application.webhook_url,
        "webhook_secret": application.webhook_secret,
        "workflows": [
            {"workflow_id": w.id, "kind": w.kind.value, "label": w.label}
            for w in application.workflows.values()
        ],
    }


_KYC_FEATURES = ("ID_VERIFICATION", "LIVENESS", "FACE_MATCH")


def _full_name(session: Session) -> str | None:
    names = [session.details.get("first_name"), session.details.get("last_name")]
    return " ".join(name for name in names if name) or None
