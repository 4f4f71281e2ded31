"""The emulated Didit state: applications, sessions, entities and who imported what."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Iterator

from bridge.sandbox.model import (
    SESSION_LIFETIME_S,
    Application,
    Entity,
    Session,
    SessionKind,
    Workflow,
    WorkflowKind,
)


class World:
    """Everything the sandbox knows. Ids and keys come from a seeded generator, so a world built
    by the same calls from the same seed is the same world."""

    def __init__(
        self,
        *,
        seed: int = 0,
        share_token_secret: bytes | None = None,
        first_session_number: int = 43000,
    ) -> None:
        self._rng = random.Random(f"world:{seed}")
        #: The key the sandbox signs share tokens with (HS256); Didit's own secret, in real life.
        self.share_token_secret: bytes = share_token_secret or self._rng.randbytes(32)
        self.applications: dict[str, Application] = {}
        self.sessions: dict[str, Session] = {}
        self.entities: dict[tuple[str, SessionKind, str], Entity] = {}
        #: (source session id, receiving application id) of every import: the 403 check.
        self.imported: set[tuple[str, str]] = set()
        self._by_key: dict[str, Application] = {}
        self._by_name: dict[str, Application] = {}
        self._sessions_by_app: dict[str, list[Session]] = {}
        self._next_number = first_session_number

    @classmethod
    def demo(cls, seed: int = 0) -> World:
        """The ready world of ``share-bridge sandbox``: our application ("ours") with KYC and KYB
        workflows, and partners "acme", "globex" and "initech" with finished sessions of both
        kinds in several statuses. Deterministic from ``seed``."""
        from bridge.sandbox.demo import build_demo_world

        return build_demo_world(cls(seed=seed), seed)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def new_secret(self, prefix: str) -> str:
        return f"{prefix}{self._rng.getrandbits(160):040x}"

    def copy(self) -> World:
        """A deep copy, used to restore the initial world on reset."""
        return copy.deepcopy(self)

    # applications and workflows

    def add_application(
        self,
        name: str,
        *,
        api_key: str | None = None,
        credits: int | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> Application:
        if name in self._by_name:
            raise ValueError(f"an application named {name!r} exists")
        application = Application(
            id=self.new_id(),
            name=name,
            api_key=api_key or self.new_secret("sbx_"),
            credits=credits,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret or self.new_secret("whsk_"),
        )
        if application.api_key in self._by_key:
            raise ValueError("that API key is taken")
        self.applications[application.id] = application
        self._by_key[application.api_key] = application
        self._by_name[name] = application
        self._sessions_by_app[application.id] = []
        return application

    def add_workflow(self, application_id: str, kind: WorkflowKind, label: str = "") -> Workflow:
        application = self.applications[application_id]
        workflow = Workflow(
            id=self.new_id(),
            application_id=application_id,
            kind=kind,
            label=label or f"{kind.value} workflow",
        )
        application.workflows[workflow.id] = workflow
        return workflow

    def application_by_key(self, api_key: str) -> Application | None:
        return self._by_key.get(api_key)

    def application_named(self, name: str) -> Application:
        return self._by_name[name]

    def workflow_of_kind(self, application_id: str, kind: WorkflowKind) -> Workflow:
        """The first workflow of ``kind`` in the application."""
        for workflow in self.applications[application_id].workflows.values():
            if workflow.kind is kind:
                return workflow
        raise KeyError(f"no {kind.value} workflow in {application_id}")

    # sessions and entities

    def add_session(
        self,
        application_id: str,
        *,
        workflow_id: str,
        status: str,
        created_at: float,
        vendor_data: str | None = None,
        details: dict[str, str] | None = None,
        shared_from_session: str | None = None,
    ) -> Session:
        workflow = self.applications[application_id].workflows[workflow_id]
        kind = workflow.kind.session_kind
        session = Session(
            id=self.new_id(),
            number=self._next_number,
            kind=kind,
            status=status,
            vendor_data=vendor_data,
            workflow_id=workflow_id,
            application_id=application_id,
            created_at=created_at,
            expires_at=created_at + SESSION_LIFETIME_S,
            shared_from_session=shared_from_session,
            details=dict(details or {}),
        )
        self._next_number += 1
        if vendor_data:
            session.entity_id = self.ensure_entity(application_id, kind, vendor_data, created_at).id
        self.sessions[session.id] = session
        self._sessions_by_app[application_id].append(session)
        return session

    def delete_session(self, session_id: str) -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return False
        self._sessions_by_app[session.application_id].remove(session)
        return True

    def sessions_of(self, application_id: str) -> Iterator[Session]:
        """The application's sessions, newest (highest session_number) first."""
        return reversed(self._sessions_by_app.get(application_id, []))

    def ensure_entity(
        self, application_id: str, kind: SessionKind, vendor_data: str, now: float
    ) -> Entity:
        key = (application_id, kind, vendor_data)
        entity = self.entities.get(key)
        if entity is None:
            entity = Entity(
                id=self.new_id(),
                application_id=application_id,
                kind=kind,
                vendor_data=vendor_data,
                created_at=now,
            )
            self.entities[key] = entity
        return entity

    def clone_session(
        self,
        source: Session,
        *,
        receiver: Application,
        workflow: Workflow,
        vendor_data: str | None,
        status: str,
        now: float,
    ) -> Session:
        """Import: a fresh session in ``receiver`` pointing back at ``source``."""
        clone = self.add_session(
            receiver.id,
            workflow_id=workflow.id,
            status=status,
            created_at=now,
            vendor_data=vendor_data,
            details=source.details,
            shared_from_session=source.id,
        )
        self.imported.add((source.id, receiver.id))
        if receiver.credits is not None:
            receiver.credits -= 1
        return clone
