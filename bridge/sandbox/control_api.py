"""The control API under ``/_sandbox/``: shape the world, mint tokens, set faults and the quota,
read the ledgers. A development tool: no authentication, bind it to 127.0.0.1."""

from __future__ import annotations

import random
from typing import Any, Literal, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.sandbox import payloads, webhooks
from bridge.sandbox.didit_api import share_session
from bridge.sandbox.faults import ENDPOINTS, Endpoint, FaultSpec
from bridge.sandbox.ledger import Ledger, WebhookDelivery, as_dict
from bridge.sandbox.model import Application, Session, SessionKind, WorkflowKind
from bridge.sandbox.quota import QuotaConfig
from bridge.sandbox.share_tokens import DEFAULT_TTL_S, MAX_TTL_S, MIN_TTL_S
from bridge.sandbox.starter_world import sample_details
from bridge.sandbox.state import SandboxState

WEBHOOK_TIMEOUT_S = 5.0
_Model = TypeVar("_Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewWorkflow(_Body):
    kind: WorkflowKind
    label: str = ""


class NewApplication(_Body):
    name: str = Field(min_length=1)
    api_key: str | None = Field(default=None, min_length=8)
    credits: int | None = Field(default=None, ge=0)
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, min_length=1)
    workflows: tuple[NewWorkflow, ...] = ()


class ApplicationPatch(_Body):
    credits: int | None = Field(default=None, ge=0)
    webhook_url: str | None = None
    webhook_secret: str | None = Field(default=None, min_length=1)


class NewSession(_Body):
    application_id: str
    workflow_id: str | None = None  # else the application's first workflow of `kind`
    kind: SessionKind = SessionKind.USER
    status: str = "Approved"
    vendor_data: str | None = None
    details: dict[str, str] = Field(default_factory=dict)


class StatusChange(_Body):
    status: str = Field(min_length=1)


class MintToken(_Body):
    session_id: str
    for_application_id: str
    ttl_in_seconds: int = Field(default=DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_TTL_S)
    legacy: bool = False  # leave session_kind out, as tokens minted before unified sharing
    expires_in_s: int | None = None  # overrides the TTL, may be negative: an expired token


class BulkTokens(_Body):
    from_application_id: str
    for_application_id: str
    count: int = Field(ge=1, le=100_000)
    session_kind: SessionKind = SessionKind.USER
    status: Literal["Approved", "Declined", "In Review"] = "Approved"
    ttl_in_seconds: int = Field(default=DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_TTL_S)


class ControlApi:
    def __init__(self, state: SandboxState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        prefix = "/_sandbox"
        return [
            Route(f"{prefix}/health", self.health, methods=["GET"]),
            Route(f"{prefix}/world", self.world, methods=["GET"]),
            Route(f"{prefix}/reset", self.reset, methods=["POST"]),
            Route(f"{prefix}/applications", self.create_application, methods=["POST"]),
            Route(
                f"{prefix}/applications/{{application_id}}", self.get_application, methods=["GET"]
            ),
            Route(
                f"{prefix}/applications/{{application_id}}",
                self.patch_application,
                methods=["PATCH"],
            ),
            Route(
                f"{prefix}/applications/{{application_id}}/workflows",
                self.create_workflow,
                methods=["POST"],
            ),
            Route(f"{prefix}/sessions", self.list_sessions, methods=["GET"]),
            Route(f"{prefix}/sessions", self.create_session, methods=["POST"]),
            Route(f"{prefix}/sessions/{{session_id}}", self.get_session, methods=["GET"]),
            Route(f"{prefix}/sessions/{{session_id}}", self.delete_session, methods=["DELETE"]),
            Route(f"{prefix}/sessions/{{session_id}}/status", self.set_status, methods=["POST"]),
            Route(f"{prefix}/tokens", self.mint_token, methods=["POST"]),
            Route(f"{prefix}/fixtures/share-tokens", self.bulk_tokens, methods=["POST"]),
            Route(f"{prefix}/faults", self.get_faults, methods=["GET"]),
            Route(f"{prefix}/faults", self.clear_faults, methods=["DELETE"]),
            Route(f"{prefix}/faults/{{endpoint}}", self.set_faults, methods=["PUT"]),
            Route(f"{prefix}/faults/{{endpoint}}", self.clear_faults, methods=["DELETE"]),
            Route(f"{prefix}/faults/{{endpoint}}/schedule", self.fault_schedule, methods=["GET"]),
            Route(f"{prefix}/quota", self.get_quota, methods=["GET"]),
            Route(f"{prefix}/quota", self.set_quota, methods=["PUT"]),
            Route(f"{prefix}/ledger/calls", self.ledger_calls, methods=["GET"]),
            Route(f"{prefix}/ledger/redemptions", self.ledger_redemptions, methods=["GET"]),
            Route(
                f"{prefix}/ledger/double-redemptions",
                self.ledger_double_redemptions,
                methods=["GET"],
            ),
            Route(f"{prefix}/ledger/webhooks", self.ledger_webhooks, methods=["GET"]),
        ]

    # the world

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok", "seed": self._state.seed})

    async def world(self, request: Request) -> Response:
        world = self._state.world
        return _json(
            {
                "applications": [
                    payloads.control_application(a) for a in world.applications.values()
                ],
                "session_count": len(world.sessions),
            }
        )

    async def reset(self, request: Request) -> Response:
        self._state.reset()
        return Response(status_code=204)

    async def create_application(self, request: Request) -> Response:
        body = await _parse(request, NewApplication)
        if isinstance(body, Response):
            return body
        world = self._state.world
        try:
            application = world.add_application(
                body.name,
                api_key=body.api_key,
                credits=body.credits,
                webhook_url=body.webhook_url,
                webhook_secret=body.webhook_secret,
            )
        except ValueError as exc:
            return _error(409, str(exc))
        for workflow in body.workflows:
            world.add_workflow(application.id, workflow.kind, workflow.label)
        return _json(payloads.control_application(application), 201)

    async def get_application(self, request: Request) -> Response:
        application = self._application(request)
        if application is None:
            return _error(404, "no such application")
        return _json(payloads.control_application(application))

    async def patch_application(self, request: Request) -> Response:
        application = self._application(request)
        if application is None:
            return _error(404, "no such application")
        body = await _parse(request, ApplicationPatch)
        if isinstance(body, Response):
            return body
        if "credits" in body.model_fields_set:
            application.credits = body.credits
        if "webhook_url" in body.model_fields_set:
            application.webhook_url = body.webhook_url
        if body.webhook_secret is not None:
            application.webhook_secret = body.webhook_secret
        return _json(payloads.control_application(application))

    async def create_workflow(self, request: Request) -> Response:
        application = self._application(request)
        if application is None:
            return _error(404, "no such application")
        body = await _parse(request, NewWorkflow)
        if isinstance(body, Response):
            return body
        workflow = self._state.world.add_workflow(application.id, body.kind, body.label)
        return _json(
            {"workflow_id": workflow.id, "kind": workflow.kind, "label": workflow.label}, 201
        )

    async def list_sessions(self, request: Request) -> Response:
        application_id = request.query_params.get("application_id")
        world = self._state.world
        sessions = world.sessions_of(application_id) if application_id else world.sessions.values()
        return _json({"sessions": [payloads.control_session(s) for s in sessions]})

    async def create_session(self, request: Request) -> Response:
        body = await _parse(request, NewSession)
        if isinstance(body, Response):
            return body
        world = self._state.world
        application = world.applications.get(body.application_id)
        if application is None:
            return _error(404, "no such application")
        workflow_id = body.workflow_id
        if workflow_id is None:
            kind = WorkflowKind.KYC if body.kind is SessionKind.USER else WorkflowKind.KYB
            try:
                workflow_id = world.workflow_of_kind(application.id, kind).id
            except KeyError:
                return _error(400, f"the application has no {kind.value} workflow")
        workflow = application.workflows.get(workflow_id)
        if workflow is None:
            return _error(404, "no such workflow in that application")
        details = body.details or sample_details(workflow.kind, random.Random(len(world.sessions)))
        session = world.add_session(
            application.id,
            workflow_id=workflow_id,
            status=body.status,
            created_at=self._state.clock(),
            vendor_data=body.vendor_data,
            details=details,
        )
        return _json(payloads.control_session(session), 201)

    async def get_session(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return _error(404, "no such session")
        return _json(payloads.control_session(session))

    async def delete_session(self, request: Request) -> Response:
        if not self._state.world.delete_session(request.path_params["session_id"]):
            return _error(404, "no such session")
        return Response(status_code=204)

    async def set_status(self, request: Request) -> Response:
        """Change a session's status and send the application's ``status.updated`` webhook."""
        session = self._session(request)
        if session is None:
            return _error(404, "no such session")
        body = await _parse(request, StatusChange)
        if isinstance(body, Response):
            return body
        session.status = body.status
        application = self._state.world.applications[session.application_id]
        delivery = await self._send_webhook(application, session)
        return _json(
            {
                "session": payloads.control_session(session),
                "webhook": as_dict(delivery) if delivery else None,
            }
        )

    async def _send_webhook(
        self, application: Application, session: Session
    ) -> WebhookDelivery | None:
        if not application.webhook_url:
            return None
        state = self._state
        now = state.clock()
        raw, headers = webhooks.signed_request(
            payloads.webhook_envelope(session, now=now), secret=application.webhook_secret
        )
        response_status: int | None = None
        error: str | None = None
        try:
            response_status = await webhooks.deliver(
                application.webhook_url, raw, headers, timeout_s=WEBHOOK_TIMEOUT_S
            )
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        delivery = WebhookDelivery(
            seq=len(state.ledger.webhooks) + 1,
            at=now,
            application_id=application.id,
            session_id=session.id,
            status=session.status,
            url=application.webhook_url,
            response_status=response_status,
            error=error,
        )
        state.ledger.add_webhook(delivery)
        return delivery

    # tokens

    async def mint_token(self, request: Request) -> Response:
        """The share endpoint's logic for any session, with test-only escape hatches."""
        body = await _parse(request, MintToken)
        if isinstance(body, Response):
            return body
        session = self._state.world.sessions.get(body.session_id)
        if session is None:
            return _error(404, "no such session")
        answer = share_session(
            self._state,
            session,
            for_application_id=body.for_application_id,
            ttl_s=body.ttl_in_seconds,
            legacy=body.legacy,
            expires_in_s=body.expires_in_s,
        )
        return Response(answer.body, answer.status, media_type="application/json")

    async def bulk_tokens(self, request: Request) -> Response:
        """Create ``count`` finished sessions in one application and a token for each: load for
        benchmarks and demos, one call instead of thousands."""
        body = await _parse(request, BulkTokens)
        if isinstance(body, Response):
            return body
        state = self._state
        world = state.world
        source = world.applications.get(body.from_application_id)
        target = world.applications.get(body.for_application_id)
        if source is None or target is None or source.id == target.id:
            return _error(404, "need two different, existing applications")
        kind = WorkflowKind.KYC if body.session_kind is SessionKind.USER else WorkflowKind.KYB
        try:
            workflow = world.workflow_of_kind(source.id, kind)
        except KeyError:
            return _error(400, f"the source application has no {kind.value} workflow")
        now = state.clock()
        tokens: list[str] = []
        session_ids: list[str] = []
        for _ in range(body.count):
            session = world.add_session(
                source.id,
                workflow_id=workflow.id,
                status=body.status,
                created_at=now,
                vendor_data=f"{source.name}-bulk-{world.new_id()}",
            )
            session_ids.append(session.id)
            tokens.append(
                state.signer.mint(
                    session_id=session.id,
                    session_kind=session.kind,
                    from_application_id=source.id,
                    for_application_id=target.id,
                    now=now,
                    expires_in_s=body.ttl_in_seconds,
                )
            )
        return _json({"tokens": tokens, "session_ids": session_ids}, 201)

    # faults and quota

    async def get_faults(self, request: Request) -> Response:
        specs = self._state.faults.specs()
        return _json({name: spec.model_dump(mode="json") for name, spec in specs.items()})

    async def set_faults(self, request: Request) -> Response:
        endpoint = _endpoint(request)
        if endpoint is None:
            return _error(404, f"endpoints: {', '.join(ENDPOINTS)}")
        spec = await _parse(request, FaultSpec)
        if isinstance(spec, Response):
            return spec
        self._state.faults.set(endpoint, spec)
        return _json({endpoint: spec.model_dump(mode="json")})

    async def clear_faults(self, request: Request) -> Response:
        if "endpoint" not in request.path_params:
            self._state.faults.clear()
            return Response(status_code=204)
        endpoint = _endpoint(request)
        if endpoint is None:
            return _error(404, f"endpoints: {', '.join(ENDPOINTS)}")
        self._state.faults.clear(endpoint)
        return Response(status_code=204)

    async def fault_schedule(self, request: Request) -> Response:
        """The faults the next calls will get (from ``start``), without using them up."""
        endpoint = _endpoint(request)
        if endpoint is None:
            return _error(404, f"endpoints: {', '.join(ENDPOINTS)}")
        try:
            count = int(request.query_params.get("count", "20"))
            start = int(request.query_params.get("start", "0"))
        except ValueError:
            return _error(400, "count and start are integers")
        if not 0 < count <= 10_000 or start < 0:
            return _error(400, "0 < count <= 10000 and start >= 0")
        decisions = self._state.faults.schedule(endpoint, count, start)
        return _json({"schedule": [decision.as_dict() for decision in decisions]})

    async def get_quota(self, request: Request) -> Response:
        return _json(self._state.quota.config.model_dump())

    async def set_quota(self, request: Request) -> Response:
        config = await _parse(request, QuotaConfig)
        if isinstance(config, Response):
            return config
        self._state.quota.configure(config)
        return _json(config.model_dump())

    # ledgers

    async def ledger_calls(self, request: Request) -> Response:
        """Calls with ``seq`` above ``since`` (default: all kept)."""
        ledger = self._state.ledger
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            return _error(400, "since is an integer")
        calls = [as_dict(call) for call in ledger.calls if call.seq > since]
        return _json({"total": ledger.calls_total, "calls": calls})

    async def ledger_redemptions(self, request: Request) -> Response:
        return _json({"redemptions": [as_dict(r) for r in self._ledger.redemptions]})

    async def ledger_double_redemptions(self, request: Request) -> Response:
        return _json({"double_redemptions": self._ledger.double_redemptions()})

    async def ledger_webhooks(self, request: Request) -> Response:
        return _json({"webhooks": [as_dict(w) for w in self._ledger.webhooks]})

    @property
    def _ledger(self) -> Ledger:
        return self._state.ledger

    def _application(self, request: Request) -> Application | None:
        return self._state.world.applications.get(request.path_params["application_id"])

    def _session(self, request: Request) -> Session | None:
        return self._state.world.sessions.get(request.path_params["session_id"])


def _endpoint(request: Request) -> Endpoint | None:
    name = request.path_params["endpoint"]
    for endpoint in ENDPOINTS:
        if endpoint == name:
            return endpoint
    return None


async def _parse(request: Request, model: type[_Model]) -> _Model | Response:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return _json({"error": "invalid body", "errors": errors}, 422)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)
