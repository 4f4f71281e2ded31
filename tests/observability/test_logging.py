from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from structlog.stdlib import ProcessorFormatter
from uvicorn.config import LOGGING_CONFIG

from bridge.errors import TokenError
from bridge.observability import (
    REDACTED,
    REDACTED_JWT,
    Redactor,
    configure_logging,
    get_logger,
    start_log_context,
)
from tests.support.waiting import wait_until


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.removesuffix("\n").split("\n")]


def bridge_handler(root: logging.Logger) -> logging.Handler:
    (handler,) = [h for h in root.handlers if isinstance(h.formatter, ProcessorFormatter)]
    return handler


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(name="stream")
def _stream() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)
    return stream


class TestJsonLines:
    def test_each_line_is_a_json_object_with_level_and_utc_time(self, stream: io.StringIO) -> None:
        """A structlog call renders one JSON object with event, level and an ISO UTC timestamp."""
        get_logger().info("notification_accepted", partner="acme", attempt=1)
        (line,) = json_lines(stream)
        assert line["event"] == "notification_accepted"
        assert line["level"] == "info"
        assert (line["partner"], line["attempt"]) == ("acme", 1)
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() == UTC.utcoffset(None)

    def test_fields_are_redacted(self, stream: io.StringIO, share_token: str) -> None:
        """A token in a field, a nested header dict or a message never reaches the line."""
        get_logger().info(
            f"got {share_token}",
            share_token=share_token,
            request={"headers": {"Authorization": f"Bearer {share_token}"}, "body": [share_token]},
        )
        assert share_token not in stream.getvalue()
        (line,) = json_lines(stream)
        assert line["event"] == f"got {REDACTED_JWT}"
        assert line["share_token"] == REDACTED
        assert line["request"] == {"headers": {"Authorization": REDACTED}, "body": [REDACTED_JWT]}

    def test_values_orjson_cannot_encode_still_render(self, stream: io.StringIO) -> None:
        """An integer beyond 64 bits falls back to the stdlib encoder instead of failing."""
        get_logger().info("big", value=2**70)
        assert json_lines(stream)[0]["value"] == 2**70

    def test_registered_secrets_are_redacted_even_when_added_later(self) -> None:
        """The app registers configured secrets on the redactor it passed in."""
        stream = io.StringIO()
        redactor = Redactor(["didit-api-key-0001"])
        configure_logging(fmt="json", stream=stream, redactor=redactor)
        redactor.add_secrets("partner-key-0002")
        get_logger().info("calling", url="https://x/?k=didit-api-key-0001", note="partner-key-0002")
        (line,) = json_lines(stream)
        assert (line["url"], line["note"]) == (f"https://x/?k={REDACTED}", REDACTED)


class TestExceptions:
    def test_an_unexpected_exception_has_a_redacted_traceback(
        self, stream: io.StringIO, share_token: str
    ) -> None:
        """log.exception inside except renders the traceback, with the token removed from it."""
        try:
            raise RuntimeError(f"upstream echoed {share_token}")
        except RuntimeError:
            get_logger().exception("import_crashed")
        (line,) = json_lines(stream)
        assert share_token not in stream.getvalue()
        assert line["exception"].startswith("Traceback (most recent call last):")
        assert line["exception"].endswith(f"RuntimeError: upstream echoed {REDACTED_JWT}")
        assert "exc_info" not in line

    def test_an_expected_error_has_no_traceback(self, stream: io.StringIO) -> None:
        """A BridgeError (bad input) logs its code and message, never a traceback."""
        try:
            raise TokenError()
        except TokenError:
            get_logger().exception("intake_refused")
        (line,) = json_lines(stream)
        assert "exception" not in line
        assert line["error_code"] == "malformed_share_token"
        assert line["error"] == "The share token is not a well-formed JWT."

    def test_an_exception_instance_can_be_passed(self, stream: io.StringIO) -> None:
        """exc_info may carry the exception itself, outside any except block."""
        get_logger().warning("refused", exc_info=TokenError("bad shape", code="x_code"))
        (line,) = json_lines(stream)
        assert (line["error_code"], line["error"]) == ("x_code", "bad shape")

    def test_exc_info_without_an_exception_is_dropped(self, stream: io.StringIO) -> None:
        """exc_info=True outside an except block adds nothing."""
        get_logger().error("odd", exc_info=True)
        (line,) = json_lines(stream)
        assert set(line) == {"event", "level", "timestamp"}


class TestStdlibLogging:
    def test_stdlib_lines_are_redacted_json(self, stream: io.StringIO, share_token: str) -> None:
        """uvicorn's error logger comes out as JSON, redacted, with its logger name."""
        logging.getLogger("uvicorn.error").error("bad request %s", share_token)
        (line,) = json_lines(stream)
        assert line["event"] == f"bad request {REDACTED_JWT}"
        assert (line["level"], line["logger"]) == ("error", "uvicorn.error")
        assert "timestamp" in line

    def test_stdlib_tracebacks_are_redacted(self, stream: io.StringIO, share_token: str) -> None:
        """A stdlib logger.exception is formatted once, as a field, and redacted."""
        try:
            raise ValueError(share_token)
        except ValueError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        (line,) = json_lines(stream)
        assert share_token not in stream.getvalue()
        assert line["exception"].endswith(f"ValueError: {REDACTED_JWT}")

    def test_stdlib_expected_errors_have_no_traceback(self, stream: io.StringIO) -> None:
        """The BridgeError rule holds for stdlib loggers too."""
        try:
            raise TokenError()
        except TokenError:
            logging.getLogger("bridge.somewhere").exception("refused")
        (line,) = json_lines(stream)
        assert "exception" not in line
        assert line["error_code"] == "malformed_share_token"

    def test_a_record_that_cannot_be_formatted_does_not_leak_its_arguments(
        self, stream: io.StringIO, share_token: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Bad %-arguments give a stand-in line; logging's stderr report never sees the token."""
        record = logging.makeLogRecord(
            {"name": "some.library", "levelno": logging.WARNING, "levelname": "WARNING",
             "msg": "one placeholder %s", "args": (share_token, "extra")}
        )  # fmt: skip
        # Straight to our handler: pytest's own capture handler raises on such a record.
        bridge_handler(logging.getLogger()).handle(record)
        (line,) = json_lines(stream)
        assert line["event"] == "log_record_unrenderable: TypeError"
        assert (line["logger"], line["level"]) == ("some.library", "error")
        assert share_token not in capsys.readouterr().err

    def test_a_closed_stream_is_reported_without_the_record(
        self, share_token: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Writing to a closed stream is reported on stderr, without the record."""
        stream = io.StringIO()
        configure_logging(fmt="json", stream=stream)
        stream.close()
        record = logging.makeLogRecord(
            {"name": "x", "levelno": logging.ERROR, "levelname": "ERROR",
             "msg": "lost %s", "args": (share_token,)}
        )  # fmt: skip
        bridge_handler(logging.getLogger()).handle(record)
        err = capsys.readouterr().err
        assert "1 log line(s) lost: ValueError" in err
        assert share_token not in err

    def test_a_stdlib_logger_set_lower_still_obeys_the_level(self) -> None:
        """A library that sets its own logger to DEBUG does not bypass level=info."""
        stream = io.StringIO()
        configure_logging(fmt="json", stream=stream)
        chatty = logging.getLogger("chatty.library")
        chatty.setLevel(logging.DEBUG)
        try:
            chatty.debug("dropped")
            chatty.info("kept")
        finally:
            chatty.setLevel(logging.NOTSET)
        assert [line["event"] for line in json_lines(stream)] == ["kept"]

    def test_uvicorn_loggers_configured_before_are_taken_over(self, share_token: str) -> None:
        """Even after uvicorn's own dictConfig, its access lines go through our processors only."""
        logging.config.dictConfig(LOGGING_CONFIG)
        stream = io.StringIO()
        configure_logging(fmt="json", stream=stream)
        access = logging.getLogger("uvicorn.access")
        path = f"/x?share_token={share_token}"
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", path, "1.1", 202)
        (line,) = json_lines(stream)
        assert line["event"] == f'127.0.0.1:5 - "POST /x?share_token={REDACTED} HTTP/1.1" 202'
        assert access.handlers == []

    def test_a_real_uvicorn_server_logs_redacted_json(self, share_token: str) -> None:
        """uvicorn on 127.0.0.1 with log_config=None: startup, access and app lines are JSON."""
        stream = io.StringIO()
        configure_logging(fmt="json", stream=stream)

        async def endpoint(request: Request) -> PlainTextResponse:
            start_log_context(notification_id="n-1", partner="acme")
            get_logger().info("request_finished", authorization=request.headers["authorization"])
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/x", endpoint)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run)
        thread.start()
        try:
            wait_until(lambda: server.started or not thread.is_alive(), "uvicorn to start")
            assert server.started
            port = server.servers[0].sockets[0].getsockname()[1]
            headers = {"Authorization": f"Bearer {share_token}"}
            with httpx.Client() as client:
                answer = client.get(f"http://127.0.0.1:{port}/x?t={share_token}", headers=headers)
            assert answer.status_code == 200
        finally:
            server.should_exit = True
            thread.join()
        assert share_token not in stream.getvalue()
        lines = json_lines(stream)
        by_logger = {line.get("logger"): line for line in lines}
        assert "uvicorn.error" in by_logger
        assert by_logger["uvicorn.access"]["event"].endswith(
            f'"GET /x?t={REDACTED_JWT} HTTP/1.1" 200'
        )
        (app_line,) = [line for line in lines if line["event"] == "request_finished"]
        assert app_line["authorization"] == REDACTED
        assert (app_line["notification_id"], app_line["partner"]) == ("n-1", "acme")


class TestConsole:
    def test_console_output_is_readable_and_redacted(self, share_token: str) -> None:
        """fmt=console renders key=value text with the traceback below, no token anywhere."""
        stream = io.StringIO()
        configure_logging(fmt="console", stream=stream)
        try:
            raise RuntimeError(share_token)
        except RuntimeError:
            get_logger().exception("import_crashed", partner="acme")
        logging.getLogger("uvicorn.error").warning("slow %s", share_token)
        text = stream.getvalue()
        assert share_token not in text
        assert "import_crashed" in text
        assert "partner=acme" in text
        assert f"RuntimeError: {REDACTED_JWT}" in text
        assert f"slow {REDACTED_JWT}" in text
        with pytest.raises(json.JSONDecodeError):
            json.loads(text.splitlines()[0])

    def test_auto_picks_console_on_a_terminal_and_json_elsewhere(self) -> None:
        """fmt=auto looks at the stream: a terminal gets colours, a pipe gets JSON."""
        terminal = FakeTerminal()
        configure_logging(stream=terminal)
        get_logger().info("hello")
        assert "\x1b[" in terminal.getvalue()
        pipe = io.StringIO()
        configure_logging(stream=pipe)
        get_logger().info("hello")
        assert json_lines(pipe)[0]["event"] == "hello"


class TestConfiguration:
    def test_configuring_twice_keeps_one_output(self) -> None:
        """A second call replaces the first: each line is written once, to the new stream."""
        first, second = io.StringIO(), io.StringIO()
        configure_logging(fmt="json", stream=first)
        configure_logging(fmt="json", stream=second)
        get_logger().info("once")
        logging.getLogger("uvicorn.error").info("once too")
        assert first.getvalue() == ""
        assert [line["event"] for line in json_lines(second)] == ["once", "once too"]

    def test_level_filters_both_paths(self) -> None:
        """level=warning drops info lines from structlog and from stdlib loggers."""
        stream = io.StringIO()
        configure_logging(level="WARNING", fmt="json", stream=stream)
        get_logger().info("dropped")
        logging.getLogger("uvicorn.error").info("dropped")
        get_logger().warning("kept")
        logging.getLogger("uvicorn.error").error("kept too")
        assert [line["event"] for line in json_lines(stream)] == ["kept", "kept too"]

    def test_chatty_http_client_logs_are_quiet_at_info(self) -> None:
        """httpx's per-request INFO lines are dropped unless debugging."""
        stream = io.StringIO()
        configure_logging(fmt="json", stream=stream)
        logging.getLogger("httpx").info("HTTP Request: POST ...")
        configure_logging(level="debug", fmt="json", stream=stream)
        logging.getLogger("httpx").info("HTTP Request: GET ...")
        assert [line["event"] for line in json_lines(stream)] == ["HTTP Request: GET ..."]

    def test_an_unknown_level_is_refused(self) -> None:
        """A typo in the level is an error, not silence."""
        with pytest.raises(ValueError, match="unknown log level 'verbose'"):
            configure_logging(level="verbose")

    def test_loggers_are_cached_only_in_production(self) -> None:
        """Tests keep reconfiguring; production gets cached loggers."""
        configure_logging(stream=io.StringIO())
        assert structlog.get_config()["cache_logger_on_first_use"] is False
        configure_logging(stream=io.StringIO(), production=True)
        assert structlog.get_config()["cache_logger_on_first_use"] is True

    def test_default_stream_is_stdout(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a stream, lines go to standard output."""
        configure_logging(fmt="json")
        get_logger().info("to_stdout")
        assert json.loads(capsys.readouterr().out)["event"] == "to_stdout"


class TestContext:
    def test_request_context_is_fresh_and_grows(self, stream: io.StringIO) -> None:
        """start_log_context clears what came before; binding adds what the request learns."""
        start_log_context(notification_id="old", rule="stale")
        start_log_context(notification_id="n-1", partner="acme")
        structlog.contextvars.bind_contextvars(rule="acme-business", outcome="accepted")
        get_logger().info("request_finished")
        logging.getLogger("uvicorn.access").info("access line")
        for line in json_lines(stream):
            assert line["notification_id"] == "n-1"
            assert (line["partner"], line["rule"], line["outcome"]) == (
                "acme",
                "acme-business",
                "accepted",
            )

    def test_job_context_is_fresh(self, stream: io.StringIO) -> None:
        """start_log_context drops the previous unit of work's fields."""
        start_log_context(notification_id="n-1", partner="acme")
        start_log_context(notification_id="n-2", attempt=3)
        get_logger().info("attempt_finished")
        (line,) = json_lines(stream)
        assert "partner" not in line
        assert (line["notification_id"], line["attempt"]) == ("n-2", 3)

    def test_concurrent_jobs_do_not_share_context(self, stream: io.StringIO) -> None:
        """Each asyncio task logs its own notification id, whatever the interleaving."""

        async def job(notification_id: str, gate: asyncio.Event, other: asyncio.Event) -> None:
            start_log_context(notification_id=notification_id)
            gate.set()
            await other.wait()
            get_logger().info("attempt_finished", expected=notification_id)

        async def main() -> None:
            a, b = asyncio.Event(), asyncio.Event()
            await asyncio.gather(job("n-a", a, b), job("n-b", b, a))

        asyncio.run(main())
        lines = json_lines(stream)
        assert len(lines) == 2
        for line in lines:
            assert line["notification_id"] == line["expected"]

    def test_secrets_bound_in_context_are_redacted(
        self, stream: io.StringIO, share_token: str
    ) -> None:
        """Context fields pass through the redactor like any other."""
        start_log_context(share_token=share_token, note=share_token)
        get_logger().info("x")
        (line,) = json_lines(stream)
        assert (line["share_token"], line["note"]) == (REDACTED, REDACTED_JWT)
