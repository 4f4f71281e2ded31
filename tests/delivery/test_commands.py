"""``bridge destinations list|enable|disable``, ``bridge redeliver`` and delivery attempts in
``bridge notifications show``, on a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from bridge.cli import build_parser
from bridge.cli.destinations_command import parse_since
from bridge.store import AttemptReport, DeliveryStatus, JobKind, Store, open_store
from tests.delivery.helpers import config_file, destination, seed_events

T = TypeVar("T")
NOW = 1_800_000_000.0


@pytest.fixture(name="config_path")
def _config_path(tmp_path: Path) -> Path:
    destinations = {
        "crm": destination("https://crm.example/hooks"),
        "audit": destination("https://audit.example/hooks"),
    }
    path = config_file(tmp_path, destinations, routed=["crm"])
    with_store(path, lambda store: store.ping())  # the store serve made: the commands need one
    return path


def with_store(config_path: Path, action: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = open_store(f"sqlite:///{config_path.parent}/bridge.db", clock=time.time)
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(list(argv))
    code: int = args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


async def dead_delivery(store: Store) -> tuple[str, str]:
    """One delivery to crm that failed with a 500 and is dead: (delivery id, notification id)."""
    [event] = await seed_events(store, 1, ["crm"])
    [job] = await store.claim(JobKind.DELIVER, owner="t", lease_s=30)
    report = AttemptReport(http_status=500, latency_ms=12, response_excerpt=b"boom", error=None)
    assert await store.delivery_failed(job, report, retry_at=None)
    notification_id = orjson.loads(event.body)["data"]["notification_id"]
    return job.ref, notification_id


class TestDestinationsList:
    def test_configured_destinations_show_even_without_deliveries(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = cli(capsys, "destinations", "list", "--config", str(config_path))
        assert code == 0
        lines = out.splitlines()
        assert [line.split()[0] for line in lines] == ["audit", "crm"]
        assert all("enabled" in line and "pending=0" in line for line in lines)

    def test_state_pending_dead_and_last_error(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        async def prepare(store: Store) -> None:
            await dead_delivery(store)
            await seed_events(store, 2, ["crm"])
            await seed_events(store, 1, ["gone"])
            await store.set_destination_enabled("crm", enabled=False, reason="HTTP 410 Gone")

        with_store(config_path, prepare)
        code, out, _ = cli(capsys, "destinations", "list", "--json", "--config", str(config_path))
        assert code == 0
        rows = {row["name"]: row for row in map(orjson.loads, out.splitlines())}
        assert rows["crm"]["state"] == "disabled"
        assert rows["crm"]["reason"] == "HTTP 410 Gone"
        assert (rows["crm"]["pending"], rows["crm"]["dead"]) == (2, 1)
        assert rows["crm"]["last_error"] == "HTTP 500"
        assert rows["gone"]["configured"] is False
        assert rows["gone"]["pending"] == 1
        assert rows["audit"]["state"] == "enabled"
        code, text, _ = cli(capsys, "destinations", "list", "--config", str(config_path))
        assert "disabled" in text
        assert "reason: HTTP 410 Gone" in text
        assert "(not configured)" in text


class TestEnable:
    def test_enable_and_disable(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = cli(
            capsys, "destinations", "disable", "crm", "--reason", "maintenance",
            "--config", str(config_path),
        )  # fmt: skip
        assert code == 0
        states = with_store(config_path, lambda store: store.destination_states())
        assert [(s.name, s.enabled, s.reason) for s in states] == [("crm", False, "maintenance")]
        code, out, _ = cli(capsys, "destinations", "enable", "crm", "--config", str(config_path))
        assert code == 0
        assert "enabled" in out
        states = with_store(config_path, lambda store: store.destination_states())
        assert [(s.name, s.enabled) for s in states] == [("crm", True)]

    def test_an_unknown_destination_is_refused(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = cli(capsys, "destinations", "enable", "nope", "--config", str(config_path))
        assert code == 1
        assert "no destination 'nope'" in err

    def test_an_invalid_config_exits_1(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("store: {url: 'mysql://db/bridge'}\n")  # all these commands read
        code, _, err = cli(capsys, "destinations", "list", "--config", str(bad))
        assert code == 1
        assert "invalid configuration" in err


class TestRedeliver:
    def test_one_dead_delivery(self, config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        delivery_id, _ = with_store(config_path, dead_delivery)
        code, out, _ = cli(capsys, "redeliver", delivery_id, "--config", str(config_path))
        assert code == 0
        assert delivery_id in out
        delivery = with_store(config_path, lambda store: store.load_delivery(delivery_id))
        assert delivery is not None
        assert delivery.status is DeliveryStatus.PENDING
        code, _, err = cli(capsys, "redeliver", delivery_id, "--config", str(config_path))
        assert code == 1
        assert "already pending" in err

    def test_an_unknown_delivery(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = cli(capsys, "redeliver", "dlv_nope", "--config", str(config_path))
        assert code == 1
        assert "no delivery dlv_nope" in err

    def test_since_with_status(self, config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        async def prepare(store: Store) -> list[str]:
            return [(await dead_delivery(store))[0] for _ in range(3)]

        ids = with_store(config_path, prepare)
        code, out, _ = cli(
            capsys, "redeliver", "--destination", "crm", "--since", "1h", "--status", "dead",
            "--config", str(config_path),
        )  # fmt: skip
        assert code == 0
        assert out.startswith("3 deliveries to crm")

        async def statuses(store: Store) -> set[DeliveryStatus]:
            found = [await store.load_delivery(i) for i in ids]
            return {d.status for d in found if d is not None}

        assert with_store(config_path, statuses) == {DeliveryStatus.PENDING}
        code, out, _ = cli(
            capsys, "redeliver", "--destination", "crm", "--since", "1h",
            "--config", str(config_path),
        )  # fmt: skip
        assert out.startswith("0 deliveries")

    def test_since_in_the_future_matches_nothing(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with_store(config_path, dead_delivery)
        code, out, _ = cli(
            capsys, "redeliver", "--destination", "crm", "--since", "2999-01-01T00:00:00Z",
            "--config", str(config_path),
        )  # fmt: skip
        assert code == 0
        assert out.startswith("0 deliveries")

    @pytest.mark.parametrize(
        "argv",
        [
            [],
            ["dlv_1", "--destination", "crm"],
            ["dlv_1", "--status", "dead"],
            ["--destination", "crm"],
            ["--since", "2h"],
        ],
    )
    def test_usage_errors_exit_2(
        self, config_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
    ) -> None:
        code, _, err = cli(capsys, "redeliver", *argv, "--config", str(config_path))
        assert code == 2
        assert "DELIVERY_ID" in err

    def test_an_unreadable_time_is_a_usage_error(self, config_path: Path) -> None:
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(
                ["redeliver", "--destination", "crm", "--since", "yesterday-ish"]
            )
        assert exited.value.code == 2


class TestParseSince:
    def test_relative(self) -> None:
        assert parse_since("2h", now=NOW) == NOW - 7200
        assert parse_since("30m", now=NOW) == NOW - 1800
        assert parse_since("1d", now=NOW) == NOW - 86400

    def test_iso(self) -> None:
        at = datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp()
        assert parse_since("2027-01-15T08:00:00Z", now=NOW) == at
        assert parse_since("2027-01-15T08:00:00", now=NOW) == at  # naive: UTC
        assert parse_since("2027-01-15T09:00:00+01:00", now=NOW) == at

    def test_unreadable(self) -> None:
        with pytest.raises(ValueError, match="not a time"):
            parse_since("last tuesday", now=NOW)


class TestNotificationsShow:
    def test_delivery_attempts_are_shown(
        self, config_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Each attempt appears with its status and latency, in text and JSON."""
        delivery_id, notification_id = with_store(config_path, dead_delivery)
        code, out, _ = cli(
            capsys, "notifications", "show", notification_id, "--config", str(config_path)
        )
        assert code == 0
        assert f"delivery {delivery_id} -> crm: dead (1 tries)" in out
        assert "attempt 1: 500 (12 ms)" in out
        code, out, _ = cli(
            capsys, "notifications", "show", notification_id, "--json",
            "--config", str(config_path),
        )  # fmt: skip
        shown = orjson.loads(out)
        [attempt] = shown["delivery_attempts"]
        assert attempt["http_status"] == 500
        assert attempt["latency_ms"] == 12
        assert attempt["response_excerpt"] == "boom"
        assert shown["deliveries"][0]["status"] == "dead"
