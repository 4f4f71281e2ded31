"""Logging setup: ``configure_logging`` is the one configuration point for structlog *and* the
stdlib loggers (uvicorn, httpx): both go through the same processors, so every line is redacted
by a ``Redactor`` before it is rendered.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import traceback
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Literal, TextIO, cast

import orjson
import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bridge.errors import BridgeError
from bridge.log_lines import LineWriter
from bridge.observability.redaction import Redactor

_UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_CHATTY_LOGGERS: Final = ("httpx", "httpcore", "hpack")

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info_of(value: object) -> _ExcInfo | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return cast(_ExcInfo, value)
    if value is True:
        current = sys.exc_info()
        if current[1] is not None:
            return cast(_ExcInfo, current)
    return None


def render_exception(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Turn ``exc_info`` into fields: code and message for a ``BridgeError``, a traceback otherwise.

    A ``BridgeError`` is an expected failure (bad input, refused config): its traceback is noise.
    """
    exc_info = _exc_info_of(event_dict.pop("exc_info", None))
    if exc_info is None:
        return event_dict
    exc = exc_info[1]
    if isinstance(exc, BridgeError):
        event_dict.setdefault("error_code", exc.code)
        event_dict.setdefault("error", exc.message)
    else:
        event_dict["exception"] = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    return event_dict


def _add_stdlib_logger_name(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict.setdefault("logger", record.name)
    return event_dict


def _orjson_dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    try:
        return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits and lone surrogates; a log line must still go out.
        return json.dumps(obj, default=default)


class _BridgeLogHandler(logging.Handler):
    """Writes formatted stdlib records through structlog's writer, so lines keep their order."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception as error:  # noqa: BLE001 - see _stand_in
            line = self.format(_stand_in(record, error))
        self._writer.msg(line)  # a closed or broken stream loses the line (see LineWriter)


def _stand_in(record: logging.LogRecord, error: BaseException) -> logging.LogRecord:
    """A record that says *record* could not be logged, without its message or arguments.

    Logging's own handleError prints the failed record's arguments to stderr unredacted.
    """
    return logging.makeLogRecord(
        {
            "name": record.name,
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": f"log_record_unrenderable: {type(error).__name__}",
        }
    )


def configure_logging(
    *,
    level: str = "info",
    fmt: Literal["json", "console", "auto"] = "auto",
    stream: TextIO | None = None,
    production: bool = False,
    redactor: Redactor | None = None,
    processors: Sequence[Processor] = (),
) -> None:
    """Configure structlog and stdlib logging (uvicorn, httpx) to write redacted lines to *stream*.

    *fmt* ``auto`` means JSON unless *stream* (default ``sys.stdout``) is a terminal. Pass the
    app's *redactor* so its registered secrets are removed too. *production* caches loggers on
    first use and writes the event loop's lines once per turn of the loop (see ``LineWriter``;
    tests leave it off so they can reconfigure and read each line as soon as it is logged).
    Safe to call again; pass the same *redactor* every time (without one, only the built-in
    patterns apply). *processors* run before redaction (the tracing's ``trace_id``/``span_id``).

    uvicorn must be started with ``log_config=None`` so that it does not install its own handlers.
    """
    threshold = logging.getLevelNamesMapping().get(level.upper())
    if threshold is None:
        raise ValueError(f"unknown log level {level!r}; expected debug, info, warning or error")
    out = sys.stdout if stream is None else stream
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    redact = redactor if redactor is not None else Redactor()
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    before: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        render_exception,
        *processors,
    ]
    writer = LineWriter(out, gather=production)
    structlog.configure(
        processors=[*before, redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        context_class=dict,
        logger_factory=lambda *args: writer,
        cache_logger_on_first_use=production,
    )
    handler = _BridgeLogHandler(writer)
    handler.setLevel(threshold)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_add_stdlib_logger_name, *before],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    _remove_bridge_handlers(root)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    for name in _CHATTY_LOGGERS:
        # httpx logs every request at INFO: one line per import and delivery is too many.
        quiet = threshold if threshold == logging.DEBUG else max(threshold, logging.WARNING)
        logging.getLogger(name).setLevel(quiet)


def _remove_bridge_handlers(root: logging.Logger) -> None:
    for old in [h for h in root.handlers if isinstance(h, _BridgeLogHandler)]:
        root.removeHandler(old)
        old.close()


def reset_logging() -> None:
    """Undo ``configure_logging``: structlog defaults, our stdlib handler gone, context clear."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    _remove_bridge_handlers(root)
    root.setLevel(logging.WARNING)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def get_logger(**initial: Any) -> FilteringBoundLogger:
    """A structlog logger with *initial* fields bound."""
    return cast(FilteringBoundLogger, structlog.get_logger(**initial))


def new_request_id() -> str:
    """A request's id for its log lines: 16 hex digits, unique enough to find one request.

    Not a secret, so not ``os.urandom``: a system call per request costs more than the
    random number.
    """
    return f"{random.getrandbits(64):016x}"


def start_log_context(**fields: Any) -> None:
    """Start a unit of work's log context (a request, a job attempt): clear what earlier work
    on this task left, then bind *fields*."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**fields)
