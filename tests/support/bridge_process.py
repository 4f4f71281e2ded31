"""``bridge serve`` as a real subprocess on 127.0.0.1, configured against a running sandbox.

Typical use (``tests/support/fixtures.py`` has fixtures doing this)::

    target = SandboxTarget.from_control(control)           # our app in the sandbox's world
    with BridgeProcess(tmp_path, target, timeout_s=1.0) as bridge:   # writes config, starts
        response = bridge.post_share("acme", {"share_token": token, "customer": "c1"})
        bridge.wait_for([response.json()["id"]])          # -> {id: "imported"}
        bridge.kill()                                      # SIGKILL
        bridge.start()                                     # same port, same SQLite file
        bridge.restart(api_key="sbx_wrong")                # SIGTERM, rewrite config, start
        bridge.cli("notifications", "list")                # `bridge ... --config <ours>`
        bridge.shown(response.json()["id"])                # the admin API's timeline
    assert "secret" not in bridge.output()                 # everything the process printed

The configuration has four partners, one per authentication scheme (``PARTNERS``), and two
rules: a KYB rule (``session_kind: business``) and a KYC catch-all, both with
``vendor_data: "{partner}:{payload.customer}"`` (so a body without ``customer`` is refused
``vendor_data_unresolved``). Every option of :class:`BridgeProcess` can be changed by
``restart(**changes)`` or ``write_config(**changes)``. The config also has ``admin.token``
(``ADMIN_TOKEN``, unless ``admin_token=None``): a test reads what the running server recorded
through the admin API (``admin``, ``shown``, ``listed``) or a read-only connection
(``statuses``), never by opening its store the way the server does (migrations under a write
lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from bridge import auth, config
from bridge.cli._common import open_configured_store
from bridge.sandbox.control import SandboxControl
from bridge.store import Notification, Store
from bridge.types import NotificationStatus
from tests.support.read_only import read_pg_rows, read_rows
from tests.support.waiting import wait_until

__all__ = [
    "ADMIN_TOKEN",
    "FINAL",
    "PARTNERS",
    "BridgeProcess",
    "BridgeStartError",
    "SandboxTarget",
    "default_rules",
    "free_port",
    "make_config",
    "wait_healthy",
]

#: Partner name -> its auth block. One partner per authentication scheme.
PARTNERS: Mapping[str, Mapping[str, Any]] = {
    "acme": {
        "scheme": "standard-webhooks",
        "secrets": ["whsec_c2hhcmUtYnJpZGdlLXRlc3QtYWNtZS1zZWNyZXQ="],
        "tolerance_s": 300,
    },
    "globex": {
        "scheme": "hmac",
        "secrets": ["globex-test-secret"],
        "algorithm": "sha256",
        "encoding": "hex",
        "signature_header": "X-Signature",
        "timestamp_header": "X-Timestamp",
        "tolerance_s": 300,
    },
    "initech": {
        "scheme": "jwt",
        "algorithms": ["HS256"],
        "key": "initech-test-shared-secret-of-32-bytes!",
        "issuer": "initech",
        "audience": "share-bridge",
        "max_age_s": 300,
        "body_hash_claim": "body_sha256",
    },
    "hooli": {"scheme": "api-key", "header": "X-Api-Key", "keys": ["hooli-test-api-key"]},
}

ADMIN_TOKEN = "adm-0f3b8c2e9d7a41b6a5c4e3f2d1c0b9a8"

#: The final notification statuses.
FINAL: frozenset[str] = frozenset(s.value for s in NotificationStatus if s.is_final)

_READY_TIMEOUT_S = 20.0
_STOP_TIMEOUT_S = 30.0


class BridgeStartError(RuntimeError):
    """``bridge serve`` exited or did not answer ``/healthz`` in time; holds its output."""


@dataclass(frozen=True, slots=True)
class SandboxTarget:
    """Our application in a running sandbox: what the bridge's ``didit`` section points at."""

    base_url: str
    application_id: str
    api_key: str
    kyc_workflow_id: str
    kyb_workflow_id: str
    webhook_secret: str

    @classmethod
    def from_control(cls, control: SandboxControl, name: str = "ours") -> SandboxTarget:
        """The application ``name`` of the sandbox ``control`` drives (its first KYC/KYB flows)."""
        app = control.application(name)
        flows = {w["kind"]: w["workflow_id"] for w in reversed(app["workflows"])}
        return cls(
            base_url=control.base_url,
            application_id=app["application_id"],
            api_key=app["api_key"],
            kyc_workflow_id=flows["KYC"],
            kyb_workflow_id=flows["KYB"],
            webhook_secret=app["webhook_secret"],
        )


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def default_rules(target: SandboxTarget) -> list[dict[str, Any]]:
    """KYB tokens to our KYB workflow, everything else to our KYC workflow."""
    vendor_data = "{partner}:{payload.customer}"
    return [
        {
            "name": "kyb",
            "when": {"session_kind": "business"},
            "then": {"workflow_id": target.kyb_workflow_id, "vendor_data": vendor_data},
        },
        {
            "name": "kyc",
            "then": {"workflow_id": target.kyc_workflow_id, "vendor_data": vendor_data},
        },
    ]


def make_config(
    target: SandboxTarget,
    *,
    db_path: Path,
    port: int,
    api_key: str | None = None,
    application_id: str | None = None,
    timeout_s: float = 1.0,
    rate_limit_per_minute: int = 600,
    max_in_flight: int = 4,
    max_body_bytes: int = 65_536,
    rules: Sequence[Mapping[str, Any]] | None = None,
    destinations: Mapping[str, Mapping[str, Any]] | None = None,
    didit_webhooks: bool = False,
    log_level: str = "info",
    partner_options: Mapping[str, Mapping[str, Any]] | None = None,
    store: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    admin_token: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration document (a dict, dumped as YAML by :class:`BridgeProcess`).

    ``api_key`` and ``application_id`` replace the target's (to misconfigure on purpose);
    ``rules`` replaces :func:`default_rules`; ``destinations`` is the YAML ``destinations``
    section as is; ``didit_webhooks`` verifies Didit webhooks with the app's webhook secret;
    ``partner_options`` adds keys to partners' entries (``{"hooli": {"max_imports_per_minute":
    5}}``); ``store`` replaces the store section (default: SQLite at ``db_path``); ``server``
    adds keys to the ``server`` section (the edge's limits, ``ops_port``); ``admin_token`` adds
    the ``admin`` section (:class:`BridgeProcess` sets ``ADMIN_TOKEN`` unless told None);
    ``extra`` sets whole top-level sections (``telemetry``, or ``partners`` to replace them).
    """
    document: dict[str, Any] = {
        "didit": {
            "base_url": target.base_url,
            "api_key": api_key if api_key is not None else target.api_key,
            "application_id": application_id or target.application_id,
            "timeout_s": timeout_s,
            "rate_limit_per_minute": rate_limit_per_minute,
            "max_in_flight": max_in_flight,
        },
        "store": dict(store) if store is not None else {"url": f"sqlite:///{db_path}"},
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "max_body_bytes": max_body_bytes,
            **(server or {}),
        },
        "partners": {
            name: {"auth": dict(block), **(partner_options or {}).get(name, {})}
            for name, block in PARTNERS.items()
        },
        "rules": [dict(rule) for rule in (rules if rules is not None else default_rules(target))],
        "logging": {"level": log_level, "format": "json"},
    }
    if destinations:
        document["destinations"] = {name: dict(spec) for name, spec in destinations.items()}
    if admin_token is not None:
        document["admin"] = {"token": admin_token}
    if didit_webhooks:
        document["didit_webhooks"] = {"secrets": [target.webhook_secret], "tolerance_s": 300}
    document.update(extra or {})
    return document


def wait_healthy(
    process: subprocess.Popen[bytes],
    base_url: str,
    output: Callable[[], str],
    *,
    timeout_s: float = _READY_TIMEOUT_S,
) -> None:
    """Return once ``process`` answers 200 at ``{base_url}/healthz``; ``BridgeStartError``
    with its ``output()`` if it exits or does not get ready within ``timeout_s``."""

    def healthy() -> bool:
        if process.poll() is not None:
            raise BridgeStartError(f"bridge serve exited with {process.returncode}:\n{output()}")
        try:
            return client.get(f"{base_url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    with httpx.Client(timeout=1.0) as client:
        try:
            wait_until(healthy, "/healthz", timeout_s=timeout_s, poll_s=0.05)
        except TimeoutError:
            raise BridgeStartError(f"bridge serve did not get ready:\n{output()}") from None


class BridgeProcess:
    """One ``bridge serve`` over one config file and one SQLite file, in ``directory``.

    The constructor writes the config and (``start=True``) starts the process. The port is
    chosen once and kept across restarts. Options are :func:`make_config`'s keywords.
    """

    def __init__(
        self, directory: Path, target: SandboxTarget, *, start: bool = True, **options: Any
    ) -> None:
        self.directory = directory
        self.target = target
        self.config_path = directory / "bridge.yaml"
        self.db_path = directory / "bridge.db"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._stdout_path = directory / "serve.stdout.log"
        self._stderr_path = directory / "serve.stderr.log"
        self._options: dict[str, Any] = {"admin_token": ADMIN_TOKEN}
        self._settings: config.Settings | None = None
        # Idle connections are dropped well before uvicorn's 5 s keep-alive closes them: with
        # equal timeouts a request can go out on a connection the server is closing (ReadError).
        self._http = httpx.Client(timeout=10.0, limits=httpx.Limits(keepalive_expiry=1.0))
        self._message_number = 0
        self.write_config(**options)
        if start:
            self.start()

    # -- configuration --------------------------------------------------------------------

    def write_config(self, **changes: Any) -> None:
        """Merge ``changes`` into the options and rewrite the YAML (a running process keeps
        its old settings until restarted)."""
        self._options.update(changes)
        document = make_config(self.target, db_path=self.db_path, port=self.port, **self._options)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        self._settings = None

    @property
    def settings(self) -> config.Settings:
        """The settings of the config file as now written."""
        if self._settings is None:
            self._settings = config.load(self.config_path)
        return self._settings

    # -- the process ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = _READY_TIMEOUT_S) -> None:
        """Start ``bridge serve`` and return once ``/healthz`` answers 200."""
        if self.running:
            raise RuntimeError("the bridge is already running")
        command = [
            sys.executable,
            "-m",
            "bridge",
            "serve",
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with self._stdout_path.open("ab") as out, self._stderr_path.open("ab") as err:
            # Our interpreter and module with arguments we built: nothing untrusted runs.
            self.process = subprocess.Popen(command, stdout=out, stderr=err)
        try:
            wait_healthy(self.process, self.base_url, self.output, timeout_s=timeout_s)
        except BridgeStartError:
            self.kill()
            raise

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = _STOP_TIMEOUT_S) -> int | None:
        """Send ``sig`` and wait for the exit; its return code (None if it was not running).
        A process still alive after ``timeout_s`` is killed and an error raised."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise RuntimeError(f"bridge serve ignored signal {sig}") from None
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL: a crash, nothing flushed or released."""
        return self.stop(signal.SIGKILL)

    def terminate(self) -> int | None:
        """SIGTERM: the graceful stop (``bridge serve`` exits 0)."""
        return self.stop(signal.SIGTERM)

    def restart(self, sig: int = signal.SIGTERM, **changes: Any) -> None:
        """Stop with ``sig``, apply config ``changes`` if any, and start on the same store."""
        self.stop(sig)
        if changes:
            self.write_config(**changes)
        self.start()

    def output(self) -> str:
        """Everything the process printed so far, over all its runs (stdout, then stderr)."""
        parts = [
            path.read_bytes().decode(errors="replace")
            for path in (self._stdout_path, self._stderr_path)
            if path.exists()
        ]
        return "\n".join(parts)

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines on stdout, parsed (other lines are left out)."""
        found: list[dict[str, Any]] = []
        if not self._stdout_path.exists():
            return found
        for line in self._stdout_path.read_bytes().splitlines():
            try:
                parsed = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                found.append(parsed)
        return found

    def close(self) -> None:
        """Stop the process if it runs (SIGTERM, then SIGKILL) and close the HTTP client."""
        try:
            if self.running:
                with contextlib.suppress(RuntimeError):
                    self.stop(signal.SIGTERM, timeout_s=15)
        finally:
            self._http.close()

    def __enter__(self) -> BridgeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- partners -------------------------------------------------------------------------

    def sign(
        self, partner: str, body: bytes, *, message_id: str | None = None, now: float | None = None
    ) -> dict[str, str]:
        """The headers ``partner`` sends with ``body`` (``bridge.auth.partner_headers``)."""
        if message_id is None:
            self._message_number += 1
            message_id = f"msg_{os.getpid()}_{time.time_ns()}_{self._message_number}"
        auth_block = self.settings.partners[partner].auth
        now = time.time() if now is None else now
        return auth.partner_headers(auth_block, body, now=now, message_id=message_id)

    def post_share(
        self,
        partner: str,
        payload: Mapping[str, Any] | bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        now: float | None = None,
    ) -> httpx.Response:
        """POST a notification to ``/v1/partners/{partner}/shares``, signed at ``now`` (default:
        the present); ``headers`` are added to (or override) the signed ones."""
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        sent = httpx.Headers(self.sign(partner, body, message_id=message_id, now=now))
        for name, value in (headers or {}).items():
            sent[name] = value  # replaces a signed header of the same name, in any letter case
        return self._http.post(
            f"{self.base_url}/v1/partners/{partner}/shares", content=body, headers=sent
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call ``/admin/v1{path}`` with the admin token."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **kwargs.pop("headers", {})}
        return self._http.request(
            method, f"{self.base_url}/admin/v1{path}", headers=headers, **kwargs
        )

    def shown(self, notification_id: str) -> dict[str, Any] | None:
        """One notification's timeline as the admin API shows it (None: unknown)."""
        answer = self.admin("GET", f"/notifications/{notification_id}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        timeline: dict[str, Any] = answer.json()
        return timeline

    def listed(self) -> list[dict[str, Any]]:
        """Every notification as the admin API lists it (newest first)."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 500}
        while True:
            answer = self.admin("GET", "/notifications", params=params)
            answer.raise_for_status()
            page = answer.json()
            rows += page["items"]
            if page["next"] is None:
                return rows
            params["before"] = page["next"]

    @property
    def http(self) -> httpx.Client:
        """A client for anything else (closed with the process helper)."""
        return self._http

    # -- the CLI and the store ------------------------------------------------------------

    def cli(self, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``bridge *args --config <this config>`` and capture its output (no check)."""
        command = [sys.executable, "-m", "bridge", *args, "--config", str(self.config_path)]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def open_store(self) -> Store:
        """The store of the config file, opened directly (call within an event loop) the way the
        server opens it: migrations under a write lock. For a stopped server; a running one is
        read with ``shown``, ``listed``, ``statuses`` or ``event_bodies``."""
        return open_configured_store(self.settings.store, clock=time.time)

    def notifications(self) -> list[Notification]:
        """Every stored notification (newest first), from ``open_store`` (see there)."""

        async def read() -> list[Notification]:
            store = self.open_store()
            try:
                rows: list[Notification] = []
                before: str | None = None
                while True:
                    page = await store.list_notifications(limit=500, before=before)
                    rows += page
                    if len(page) < 500:
                        return rows
                    before = page[-1].id
            finally:
                await store.close()

        return asyncio.run(read())

    def statuses(self) -> dict[str, str]:
        """``{notification id: status}``, read through a read-only connection: a poll must not
        open the running server's store the way the server does (migrations, write locks)."""
        query = "SELECT id, status FROM notifications"
        store = self.settings.store
        if store.is_postgres:
            return dict(read_pg_rows(store.url, store.schema_, query))
        return dict(read_rows(self.db_path, query))

    def event_bodies(self, notification_id: str) -> list[bytes]:
        """The bodies of one notification's events, oldest first, read from an SQLite store
        through a read-only connection (the admin API shows events without their bodies)."""
        query = "SELECT body FROM events WHERE notification_id = ? ORDER BY created_at, rowid"
        return [bytes(body) for (body,) in read_rows(self.db_path, query, (notification_id,))]

    def wait_for(
        self,
        ids: Iterable[str],
        statuses: Collection[str] = FINAL,
        *,
        timeout_s: float = 20.0,
        poll_s: float = 0.1,
    ) -> dict[str, str]:
        """Wait until every notification in ``ids`` has a status in ``statuses``; return
        ``{id: status}``. Raises ``TimeoutError`` listing the stragglers."""
        wanted = set(ids)
        if not wanted:
            return {}

        def reached() -> dict[str, str]:
            current = self.statuses()
            found = {i: current.get(i, "missing") for i in wanted}
            return found if all(s in statuses for s in found.values()) else {}

        try:
            return wait_until(reached, f"{sorted(statuses)}", timeout_s=timeout_s, poll_s=poll_s)
        except TimeoutError:
            current = self.statuses()
            waiting = {i: current.get(i, "missing") for i in wanted}
            waiting = {i: s for i, s in waiting.items() if s not in statuses}
            raise TimeoutError(f"not reached {sorted(statuses)}: {waiting}") from None
