"""A small client for a running sandbox's control API, for tests, the demo and benchmarks."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx


class SandboxControlError(Exception):
    """The control API refused a call; ``status`` and ``body`` say why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control API answered {status}: {body!r}")
        self.status = status
        self.body = body


class SandboxControl:
    """Drives ``{base_url}/_sandbox/``. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/_sandbox", timeout=timeout_s)

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # the world

    def world(self) -> dict[str, Any]:
        """``{"applications": [...], "session_count": n}``, with ids, API keys and workflows."""
        return self.call("GET", "/world")

    def application(self, name: str) -> dict[str, Any]:
        """One application by name (the ready world has "ours", "acme", "globex", "initech")."""
        for application in self.world()["applications"]:
            if application["name"] == name:
                found: dict[str, Any] = application
                return found
        raise KeyError(name)

    def create_application(
        self,
        name: str,
        *,
        credits: int | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        workflow_kinds: tuple[str, ...] = ("KYC", "KYB"),
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "credits": credits,
            "webhook_url": webhook_url,
            "workflows": [{"kind": kind} for kind in workflow_kinds],
        }
        if webhook_secret is not None:
            body["webhook_secret"] = webhook_secret
        return self.call("POST", "/applications", body)

    def update_application(self, application_id: str, **fields: Any) -> dict[str, Any]:
        """Set ``credits``, ``webhook_url`` or ``webhook_secret``."""
        return self.call("PATCH", f"/applications/{application_id}", fields)

    def create_session(
        self,
        application_id: str,
        *,
        kind: str = "user",
        status: str = "Approved",
        vendor_data: str | None = None,
        workflow_id: str | None = None,
        details: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "application_id": application_id,
            "kind": kind,
            "status": status,
            "vendor_data": vendor_data,
            "workflow_id": workflow_id,
            "details": details or {},
        }
        return self.call("POST", "/sessions", body)

    def session(self, session_id: str) -> dict[str, Any]:
        """The full record, including ``shared_from_session`` and ``entity_id``."""
        return self.call("GET", f"/sessions/{session_id}")

    def sessions(self, application_id: str) -> list[dict[str, Any]]:
        result = self.call("GET", "/sessions", params={"application_id": application_id})
        rows: list[dict[str, Any]] = result["sessions"]
        return rows

    def delete_session(self, session_id: str) -> None:
        self.call("DELETE", f"/sessions/{session_id}")

    def set_status(self, session_id: str, status: str) -> dict[str, Any]:
        """Change the status; the application's webhook is sent before this returns.
        ``{"session": ..., "webhook": {"response_status": ..., ...} | None}``."""
        return self.call("POST", f"/sessions/{session_id}/status", {"status": status})

    # tokens

    def mint_token(
        self,
        session_id: str,
        for_application_id: str,
        *,
        ttl_in_seconds: int = 3600,
        legacy: bool = False,
        expires_in_s: int | None = None,
    ) -> str:
        """A share token, minted by the share endpoint's rules (finished sessions only).
        ``legacy`` leaves ``session_kind`` out; ``expires_in_s`` overrides the TTL (negative:
        already expired)."""
        body = {
            "session_id": session_id,
            "for_application_id": for_application_id,
            "ttl_in_seconds": ttl_in_seconds,
            "legacy": legacy,
            "expires_in_s": expires_in_s,
        }
        token: str = self.call("POST", "/tokens", body)["share_token"]
        return token

    def bulk_tokens(
        self,
        from_application_id: str,
        for_application_id: str,
        count: int,
        *,
        session_kind: str = "user",
        status: str = "Approved",
        ttl_in_seconds: int = 3600,
    ) -> list[str]:
        """``count`` fresh finished sessions in the first application, one token each."""
        body = {
            "from_application_id": from_application_id,
            "for_application_id": for_application_id,
            "count": count,
            "session_kind": session_kind,
            "status": status,
            "ttl_in_seconds": ttl_in_seconds,
        }
        tokens: list[str] = self.call("POST", "/fixtures/share-tokens", body)["tokens"]
        return tokens

    # faults and quota

    def set_faults(self, endpoint: str, **spec: Any) -> dict[str, Any]:
        """Faults for ``import``, ``share``, ``list`` or ``decision`` (see ``FaultSpec``)."""
        return self.call("PUT", f"/faults/{endpoint}", spec)

    def faults(self) -> dict[str, Any]:
        """The fault spec set on each endpoint."""
        return self.call("GET", "/faults")

    def clear_faults(self, endpoint: str | None = None) -> None:
        self.call("DELETE", f"/faults/{endpoint}" if endpoint else "/faults")

    def fault_schedule(
        self, endpoint: str, count: int = 20, start: int = 0
    ) -> list[dict[str, Any]]:
        params = {"count": count, "start": start}
        rows: list[dict[str, Any]] = self.call(
            "GET", f"/faults/{endpoint}/schedule", params=params
        )["schedule"]
        return rows

    def quota(self) -> dict[str, Any]:
        return self.call("GET", "/quota")

    def set_quota(self, **config: Any) -> dict[str, Any]:
        """``write_limit``, ``write_window_s``, ``read_limit``, ``read_window_s``."""
        return self.call("PUT", "/quota", config)

    # ledgers

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.call("GET", "/ledger/calls", params={"since": since})[
            "calls"
        ]
        return rows

    def redemptions(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.call("GET", "/ledger/redemptions")["redemptions"]
        return rows

    def double_redemptions(self) -> list[dict[str, Any]]:
        """Each (source session, receiving application) redeemed more than once."""
        rows: list[dict[str, Any]] = self.call("GET", "/ledger/double-redemptions")[
            "double_redemptions"
        ]
        return rows

    def webhooks(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.call("GET", "/ledger/webhooks")["webhooks"]
        return rows

    def reset(self) -> None:
        """The initial world again, empty ledgers, no faults, the initial quota."""
        self.call("POST", "/reset")

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Any control endpoint (``path`` below ``/_sandbox``); raises on a 4xx or 5xx."""
        response = self._http.request(method, path, json=body, params=params)
        if response.status_code >= 400:
            try:
                detail: Any = response.json()
            except ValueError:
                detail = response.text
            raise SandboxControlError(response.status_code, detail)
        if response.status_code == 204 or not response.content:
            return {}
        payload = response.json()
        if not isinstance(payload, dict):
            raise SandboxControlError(response.status_code, payload)
        return payload
