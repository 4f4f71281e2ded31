"""The emulated Didit endpoints. Each handler gets the authenticated application and answers;
authentication, the quota, faults and the ledger are the gate's (``gate.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from bridge.sandbox import answers, payloads
from bridge.sandbox.answers import Answer
from bridge.sandbox.ledger import Redemption
from bridge.sandbox.model import FINISHED_STATUSES, IN_REVIEW, Application, Session, SessionKind
from bridge.sandbox.share_tokens import (
    DEFAULT_TTL_S,
    MAX_TTL_S,
    MIN_TTL_S,
    InvalidShareToken,
)
from bridge.sandbox.state import SandboxState

_KYB_COUNT_CAP = 100  # "the KYB count is capped at 100" (reference §6)
_DEFAULT_LIMIT = 50


class DiditApi:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    async def import_shared(self, request: Request, application: Application) -> Answer:
        """``POST /v3/session/import-shared/``. Checks run in this order (Didit's is not
        documented): fields (400), token (401), addressee (403), workflow (404), source (404),
        kind (400, bare array: the sandbox's choice, Didit's behaviour is unconfirmed), already
        imported (403), credits (403)."""
        body = await _json_object(request)
        if isinstance(body, Answer):
            return body
        errors = _import_field_errors(body)
        if errors:
            return answers.field_errors(errors)
        state = self._state
        world = state.world
        now = state.clock()
        try:
            claims = state.signer.verify(body["share_token"], now=now)
        except InvalidShareToken:
            return answers.detail(401, answers.SHARE_INVALID)
        if claims.for_application_id != application.id:
            return answers.detail(403, answers.NOT_FOR_YOU)
        workflow = application.workflows.get(body["workflow_id"])
        if workflow is None:
            return answers.detail(404, answers.WORKFLOW_UNKNOWN)
        source = world.sessions.get(claims.session_id)
        if source is None or source.application_id != claims.from_application_id:
            return answers.detail(404, answers.SOURCE_GONE)
        if workflow.kind.session_kind is not claims.session_kind:
            return answers.bare_errors(
                f"A {claims.session_kind.value} share token can only be imported into a "
                f"{'KYC' if claims.session_kind is SessionKind.USER else 'KYB'} workflow."
            )
        if (source.id, application.id) in world.imported:
            return answers.detail(403, answers.ALREADY_IMPORTED)
        if application.credits is not None and application.credits <= 0:
            return answers.detail(403, answers.NO_CREDITS)
        trust_review = _as_bool(body["trust_review"]) is True
        vendor_data = body.get("vendor_data", source.vendor_data)
        clone = world.clone_session(
            source,
            receiver=application,
            workflow=workflow,
            vendor_data=vendor_data,
            status=source.status if trust_review else IN_REVIEW,
            now=now,
        )
        state.ledger.add_redemption(
            Redemption(
                seq=len(state.ledger.redemptions) + 1,
                at=now,
                source_session_id=source.id,
                source_application_id=source.application_id,
                receiving_application_id=application.id,
                new_session_id=clone.id,
                session_kind=clone.kind.value,
                workflow_id=workflow.id,
                vendor_data=vendor_data,
                trust_review=trust_review,
                status=clone.status,
            )
        )
        return answers.json_answer(201, payloads.imported_session(clone))

    async def share(self, request: Request, application: Application) -> Answer:
        """``POST /v3/session/{session_id}/share/`` by the SHARING application."""
        session = self._state.world.sessions.get(request.path_params["session_id"])
        if session is None or session.application_id != application.id:
            return answers.detail(404, answers.NOT_FOUND)
        body = await _json_object(request)
        if isinstance(body, Answer):
            return body
        errors: dict[str, list[str]] = {}
        for_application_id = body.get("for_application_id")
        if for_application_id is None:
            errors["for_application_id"] = [answers.REQUIRED]
        elif not _is_uuid(for_application_id):
            errors["for_application_id"] = ["Must be a valid UUID."]
        ttl = body.get("ttl_in_seconds", DEFAULT_TTL_S)
        ttl_error = _ttl_error(ttl)
        if ttl_error:
            errors["ttl_in_seconds"] = [ttl_error]
        if errors:
            return answers.field_errors(errors)
        return share_session(
            self._state, session, for_application_id=str(for_application_id), ttl_s=int(ttl)
        )

    async def list_sessions(self, request: Request, application: Application) -> Answer:
        """``GET /v3/sessions/``: newest first, DRF limit/offset paging. With
        ``session_kind=all`` the KYC and KYB pages are concatenated and ``next``/``previous``
        follow the KYC side, and the KYB count is capped at 100, as the reference describes."""
        query = request.query_params
        errors: dict[str, list[str]] = {}
        kind = query.get("session_kind", "user")
        if kind not in ("user", "business", "all"):
            errors["session_kind"] = [f'"{kind}" is not a valid choice.']
        bounds: dict[str, float | None] = {}
        for name in ("date_from", "date_to"):
            raw = query.get(name)
            bounds[name] = _parse_instant(raw) if raw else None
            if raw and bounds[name] is None:
                errors[name] = ["Enter a valid date/time."]
        if errors:
            return answers.field_errors(errors)
        limit = _positive_int(query.get("limit"), _DEFAULT_LIMIT, strict=True)
        offset = _positive_int(query.get("offset"), 0, strict=False)

        def matching(session_kind: SessionKind) -> list[Session]:
            return [
                session
                for session in self._state.world.sessions_of(application.id)
                if session.kind is session_kind
                and _matches(session, query.get("vendor_data"), query.get("workflow_id"))
                and _matches_status(session, query.get("status"))
                and _in_bounds(session, bounds["date_from"], bounds["date_to"])
            ]

        users = matching(SessionKind.USER) if kind in ("user", "all") else []
        businesses = matching(SessionKind.BUSINESS) if kind in ("business", "all") else []
        business_count = min(len(businesses), _KYB_COUNT_CAP)
        lead = users if kind != "business" else businesses[:business_count]
        rows = lead[offset : offset + limit]
        if kind == "all":
            rows = rows + businesses[:business_count][offset : offset + limit]
        count = len(users) + business_count
        workflows = application.workflows
        return answers.json_answer(
            200,
            {
                "count": count,
                "next": _next_url(request, len(lead), limit, offset),
                "previous": _previous_url(request, limit, offset),
                "results": [payloads.list_row(s, workflows.get(s.workflow_id)) for s in rows],
            },
        )

    async def decision(self, request: Request, application: Application) -> Answer:
        """``GET /v3/session/{session_id}/decision/`` for a session of the caller's."""
        session = self._state.world.sessions.get(request.path_params["session_id"])
        if session is None or session.application_id != application.id:
            return answers.detail(404, answers.NOT_FOUND)
        return answers.json_answer(200, payloads.decision(session))


def share_session(
    state: SandboxState,
    session: Session,
    *,
    for_application_id: str,
    ttl_s: int,
    legacy: bool = False,
    expires_in_s: int | None = None,
) -> Answer:
    """Mint a share token for ``session`` (the share endpoint's rules). ``legacy`` leaves out
    ``session_kind``; ``expires_in_s`` (control API only) overrides the TTL, even below zero."""
    target = state.world.applications.get(for_application_id)
    if target is None:
        return answers.field_errors({"for_application_id": ["Application not found."]})
    if target.id == session.application_id:
        return answers.field_errors(
            {"for_application_id": ["Must differ from the calling application."]}
        )
    if session.status not in FINISHED_STATUSES:
        return answers.bare_errors(answers.UNFINISHED)
    token = state.signer.mint(
        session_id=session.id,
        session_kind=None if legacy else session.kind,
        from_application_id=session.application_id,
        for_application_id=target.id,
        now=state.clock(),
        expires_in_s=ttl_s if expires_in_s is None else expires_in_s,
    )
    return answers.json_answer(
        200,
        {
            "share_token": token,
            "for_application_id": target.id,
            "session_kind": session.kind.value,
        },
    )


async def _json_object(request: Request) -> dict[str, Any] | Answer:
    raw = await request.body()
    if not raw.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return answers.detail(415, f'Unsupported media type "{media_type}" in request.')
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return answers.detail(400, f"JSON parse error - {exc}")
    if not isinstance(body, dict):
        return answers.field_errors(
            {
                "non_field_errors": [
                    f"Invalid data. Expected a dictionary, but got {type(body).__name__}."
                ]
            }
        )
    return body


def _import_field_errors(body: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    token = body.get("share_token")
    if token is None:
        errors["share_token"] = [answers.REQUIRED]
    elif not isinstance(token, str):
        errors["share_token"] = ["Not a valid string."]
    elif not token.strip():
        errors["share_token"] = ["This field may not be blank."]
    workflow_id = body.get("workflow_id")
    if workflow_id is None:
        errors["workflow_id"] = [answers.REQUIRED]
    elif not _is_uuid(workflow_id):
        errors["workflow_id"] = ["Must be a valid UUID."]
    vendor_data = body.get("vendor_data")
    if vendor_data is not None and not isinstance(vendor_data, str):
        errors["vendor_data"] = ["Not a valid string."]
    # The import page's schema marks trust_review required (another page says optional, default
    # false): the sandbox requires it, so a client that leaves it out learns early.
    if "trust_review" not in body:
        errors["trust_review"] = [answers.REQUIRED]
    elif _as_bool(body["trust_review"]) is None:
        errors["trust_review"] = ["Must be a valid boolean."]
    return errors


_TRUE = (True, 1, "true", "True", "1")
_FALSE = (False, 0, "false", "False", "0")


def _as_bool(value: Any) -> bool | None:
    """DRF's BooleanField: a few spellings of true and false, nothing else."""
    if isinstance(value, float):
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _ttl_error(ttl: Any) -> str | None:
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        return "A valid integer is required."
    if ttl < MIN_TTL_S:
        return f"Ensure this value is greater than or equal to {MIN_TTL_S}."
    if ttl > MAX_TTL_S:
        return f"Ensure this value is less than or equal to {MAX_TTL_S}."
    return None


def _parse_instant(raw: str) -> float | None:
    try:
        instant = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp()


def _positive_int(raw: str | None, default: int, *, strict: bool) -> int:
    """DRF's LimitOffsetPagination: a bad value falls back to the default, never an error."""
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    if value < 0 or (strict and value == 0):
        return default
    return value


def _matches(session: Session, vendor_data: str | None, workflow_id: str | None) -> bool:
    return (vendor_data is None or session.vendor_data == vendor_data) and (
        workflow_id is None or session.workflow_id == workflow_id
    )


def _matches_status(session: Session, status: str | None) -> bool:
    """The filter takes "Approved" or "APPROVED" alike (the reference shows both)."""
    if status is None:
        return True
    return _normal(session.status) == _normal(status)


def _normal(status: str) -> str:
    return status.strip().upper().replace(" ", "_")


def _in_bounds(session: Session, date_from: float | None, date_to: float | None) -> bool:
    return (date_from is None or session.created_at >= date_from) and (
        date_to is None or session.created_at <= date_to
    )


def _next_url(request: Request, count: int, limit: int, offset: int) -> str | None:
    if offset + limit >= count:
        return None
    return str(request.url.include_query_params(limit=limit, offset=offset + limit))


def _previous_url(request: Request, limit: int, offset: int) -> str | None:
    if offset <= 0:
        return None
    if offset - limit <= 0:
        return str(request.url.include_query_params(limit=limit).remove_query_params("offset"))
    return str(request.url.include_query_params(limit=limit, offset=offset - limit))
