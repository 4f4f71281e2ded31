"""Logs without secrets, and metrics.

``configure_logging`` is the one configuration point for structlog *and* the stdlib loggers
(uvicorn, httpx): both go through the same processors, so every line is redacted by a
``Redactor`` before it is rendered. ``Metrics`` holds the Prometheus instruments of one app.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from types import TracebackType
from typing import Any, Final, Literal, TextIO, cast
from uuid import UUID

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from bridge.errors import BridgeError
from bridge.log_lines import LineWriter

__all__ = [
    "METRICS_CONTENT_TYPE",
    "REDACTED",
    "REDACTED_JWT",
    "SNAPSHOT_GAUGES",
    "Metrics",
    "Redactor",
    "SnapshotSource",
    "bind",
    "bind_job",
    "bind_request",
    "configure_logging",
    "get_logger",
    "render_exception",
    "reset_logging",
]

REDACTED: Final = "[REDACTED]"
REDACTED_JWT: Final = "[REDACTED:jwt]"

_B64URL = r"[A-Za-z0-9_-]"
_CREDENTIAL_WORDS = (
    r"token|secret|passw(?:or)?d|api[_-]?key|authorization|credential|cookie|private[_-]?key"
)
# One pass over the text finds every shape of secret. A JWT takes its whole base64url run and any
# further dot-segments, so a token glued to other text is removed whole, never half. Matching only
# where a run starts (and possessively) keeps a long "eyJeyJ..." linear instead of quadratic.
# Intake accepts what pyjwt does: any segment may end in "=" padding, and a header that does not
# start '{"' (so no "eyJ" in it) is found by its claims segment, which still does.
# A `name: value` pair is redacted only when the name ends at a credential word ("api_key=",
# "token:"), so an error code such as "share_token_expired: ..." keeps its message.
_PATTERN: Final = re.compile(
    rf"(?P<jwt>(?<!{_B64URL})(?={_B64URL}*eyJ|{_B64URL}++={{0,2}}\.{_B64URL}*eyJ)"
    rf"{_B64URL}++={{0,2}}(?:\.[A-Za-z0-9_=-]*+){{2,}})"
    r"|(?P<whsec>whsec_[A-Za-z0-9+/=_-]+)"
    r"|(?P<bearer>(?i:bearer)[ \t]+)(?!\[REDACTED)[^\s\"',;]+"
    r"|(?P<basic>Basic[ \t]+)[A-Za-z0-9+/=]{8,}"
    rf"|(?P<kv>(?i:{_CREDENTIAL_WORDS})(?i:[_-]?(?:key|value|string))?s?[\"']?[ \t]*[:=][ \t]*)"
    r"(?:(?P<q>[\"'])[^\"'\n]*(?P=q)"
    r"|[\"']?(?!\[REDACTED)(?i:(?:bearer|basic)[ \t]+)?[^\s\"'&,;})\]]+)",
    re.ASCII,
)
# Every match of _PATTERN contains one of these, lowercased.
_TRIGGERS: Final = (
    "eyj", "whsec_", "bearer", "basic", "token", "secret", "passw", "api", "authorization",
    "credential", "cookie", "private",
)  # fmt: skip
# The same words, searched ASCII case-insensitively: _PATTERN folds only ASCII letters, so a text
# without any of them cannot match it.
_TRIGGER_SOURCE: Final = f"(?ai:{'|'.join(map(re.escape, _TRIGGERS))})"
_TRIGGER: Final = re.compile(_TRIGGER_SOURCE)
_SENSITIVE_KEY: Final = re.compile(rf"(?i:{_CREDENTIAL_WORDS})")
# A digest of a token is what we keep on purpose (DESIGN §6); it is not the credential.
_DIGEST_KEY: Final = re.compile(r"(?i)(?:sha256|hash|digest|fingerprint)$")
_KEPT_TYPES: Final = (bool, int, float, type(None), datetime, date, time, timedelta, UUID)
_MAX_DEPTH: Final = 32
_MAX_CACHED_KEYS: Final = 4096
_MAX_CACHED_TEXT: Final = 256


def _replace(match: re.Match[str]) -> str:
    if match.group("jwt") is not None:
        return REDACTED_JWT
    if match.group("whsec") is not None:
        return REDACTED
    for prefix in ("bearer", "basic", "kv"):
        kept = match.group(prefix)
        if kept is not None:
            quote = match.group("q") or ""
            return f"{kept}{quote}{REDACTED}{quote}"
    raise AssertionError("unreachable: every alternative has a named group")


class Redactor:
    """A structlog processor that removes credentials from every value of an event.

    It removes JWT-shaped strings (share tokens), ``whsec_`` secrets, ``Bearer``/``Basic``
    credentials, ``key=value`` / ``"key": "value"`` pairs whose key names a secret, the values of
    fields and nested keys named like ``token``, ``secret``, ``api_key``, ``password`` or
    ``authorization``, and every literal secret registered with :meth:`add_secrets`. It walks
    nested dicts, lists, tuples and sets, decodes bytes, and turns unknown objects into their
    redacted ``str``. Numbers, booleans, dates and UUIDs are kept.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        # Field names repeat on every line: remember each one's redacted form and sensitivity.
        self._keys: dict[str, tuple[str, bool]] = {}
        # Values repeat too ("POST", the path, the outcome): remember what short texts become.
        self._texts: dict[str, str] = {}
        self.add_secrets(*secrets)

    def add_secrets(self, *secrets: str) -> None:
        """Register literal secret values (API keys, admin token, partner keys); ignore empty ones.

        A ``whsec_`` secret is registered with and without its prefix. Secrets are never removed:
        a rotated-out value must stay out of the logs too.
        """
        fresh = set(self._secrets)
        for secret in secrets:
            if secret:
                fresh.add(secret)
                if secret.startswith("whsec_") and len(secret) > len("whsec_"):
                    fresh.add(secret.removeprefix("whsec_"))
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = tuple(sorted(fresh, key=len, reverse=True))
        # One search tells whether a text holds a registered secret or a trigger word at all:
        # most texts hold neither, and then there is nothing more to do.
        self._suspect = re.compile("|".join([*map(re.escape, self._secrets), _TRIGGER_SOURCE]))
        self._keys = {}
        self._texts = {}

    def redact_text(self, text: str) -> str:
        """Return *text* with each credential replaced by ``[REDACTED]`` (``[REDACTED:jwt]``)."""
        cached = self._texts.get(text)
        if cached is not None:
            return cached
        clean = self._redact_text(text)
        if len(text) <= _MAX_CACHED_TEXT:
            if len(self._texts) >= _MAX_CACHED_KEYS:
                self._texts.clear()  # unique values (ids, times) must not crowd out the rest
            self._texts[text] = clean
        return clean

    def _redact_text(self, text: str) -> str:
        if self._suspect.search(text) is None:
            return text
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # A text with a secret but no trigger word needs no pattern run.
        if _TRIGGER.search(text) is not None:
            return _PATTERN.sub(_replace, text)
        return text

    def redact(self, value: Any) -> Any:
        """Return a copy of *value* (any nesting of containers) with every credential removed."""
        return self._redact(value, 0)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return self._redact_mapping(event_dict, 0)

    def _redact_mapping(self, mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
        # Every log line comes through here: the common cases (a known field name, a string or
        # a number) are inlined; anything else takes the general path of ``_field``.
        redacted: dict[Any, Any] = {}
        known_keys = self._keys
        for key, value in mapping.items():
            known = known_keys.get(key) if type(key) is str else None
            if known is None:
                name, clean = self._field(key, value, depth)
                redacted[name] = clean
                continue
            name, sensitive = known
            kind = type(value)
            if kind is str:
                redacted[name] = REDACTED if sensitive else self.redact_text(value)
            elif kind is int or kind is float or kind is bool or value is None:
                redacted[name] = value
            else:
                redacted[name] = self._field(key, value, depth)[1]
        return redacted

    def _field(self, key: object, value: Any, depth: int) -> tuple[Any, Any]:
        name, sensitive = self._key(key)
        if sensitive and not isinstance(value, _KEPT_TYPES):
            return name, REDACTED
        return name, self._redact(value, depth + 1)

    def _key(self, key: object) -> tuple[Any, bool]:
        if isinstance(key, _KEPT_TYPES):
            return key, False
        text = key if isinstance(key, str) else _text_of(key)
        known = self._keys.get(text)
        if known is None:
            sensitive = _SENSITIVE_KEY.search(text) is not None and not _DIGEST_KEY.search(text)
            known = (self.redact_text(text), sensitive)
            if len(self._keys) < _MAX_CACHED_KEYS:
                self._keys[text] = known
        return known

    def _redact(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, _KEPT_TYPES):
            return value
        if depth >= _MAX_DEPTH:
            return "[TRUNCATED]"
        if isinstance(value, Mapping):
            return self._redact_mapping(value, depth)
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str | bytes):
            # A (name, value) header pair, as in httpx's ``Headers.raw``.
            return self._field(value[0], value[1], depth)
        if isinstance(value, tuple):
            return tuple(self._redact(item, depth + 1) for item in value)
        if isinstance(value, list | set | frozenset):
            return [self._redact(item, depth + 1) for item in value]
        return self.redact_text(_text_of(value))


def _text_of(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the log call
        return f"<unprintable {type(value).__name__}>"


# --- logging -----------------------------------------------------------------------------------

_LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
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
    threshold = _LEVELS.get(level.lower())
    if threshold is None:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}")
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


def bind_request(**fields: Any) -> None:
    """Start a request's log context: clear what earlier work left, then bind *fields*."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**fields)


def bind_job(**fields: Any) -> None:
    """Start a job attempt's log context: clear, then bind *fields* (notification_id...)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**fields)


def bind(**fields: Any) -> None:
    """Add *fields* (rule, outcome...) to the current unit of work's context, as it learns them."""
    structlog.contextvars.bind_contextvars(**fields)


# --- metrics -----------------------------------------------------------------------------------

SnapshotSource = Callable[[], Mapping[str, float]]

#: The partner label of a notification for a partner not configured (so a URL cannot grow the
#: label set).
UNKNOWN_PARTNER: Final = "_unknown"

SNAPSHOT_GAUGES: Final[Mapping[str, str]] = {
    "queue_depth": "Notifications waiting to be imported.",
    "oldest_pending_age_seconds": "Age of the oldest pending notification.",
    "dead_deliveries": "Deliveries that exhausted their retry schedule.",
    "disabled_destinations": "Destinations disabled (for example after a 410).",
}

# What generate_latest writes. prometheus-client >= 0.22 labels its CONTENT_TYPE_LATEST 1.0.0 while
# still writing this format when no Accept header asks otherwise; every scraper reads 0.0.4.
METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_INTAKE_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_IMPORT_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0)


class _SnapshotCollector(Collector):
    """Gauges read from the store at scrape time, through a sync callback the app sets."""

    def __init__(self) -> None:
        self.source: SnapshotSource | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for key, doc in SNAPSHOT_GAUGES.items():
            yield GaugeMetricFamily(f"bridge_{key}", doc)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values = self._read()
        for key, doc in SNAPSHOT_GAUGES.items():
            family = GaugeMetricFamily(f"bridge_{key}", doc)
            if key in values:
                family.add_metric([], values[key])
            yield family

    def _read(self) -> dict[str, float]:
        if self.source is None:
            return {}
        try:
            snapshot = self.source()
            return {key: float(snapshot[key]) for key in SNAPSHOT_GAUGES if key in snapshot}
        except Exception:  # noqa: BLE001 - a failing store must not fail the scrape
            get_logger().warning("metrics_snapshot_failed", exc_info=True)
            return {}


class Metrics:
    """The Prometheus instruments of one app, in their own registry (so tests can build several).

    Label values must come from bounded sets (configured partner names, outcome codes); an
    unknown partner is counted as ``partner="_unknown"``, never by the name in the URL.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.notifications_received = Counter(
            "bridge_notifications_received", "Partner notifications by partner and result.",
            ["partner", "result"], registry=r,
        )  # fmt: skip
        self.intake_latency = Histogram(
            "bridge_intake_latency_seconds", "Time to answer a partner notification.",
            registry=r, buckets=_INTAKE_BUCKETS,
        )  # fmt: skip
        self.imports = Counter(
            "bridge_imports", "Import attempts by outcome and reason.",
            ["outcome", "reason"], registry=r,
        )  # fmt: skip
        self.import_latency = Histogram(
            "bridge_import_latency_seconds", "Duration of import-shared calls to Didit.",
            registry=r, buckets=_IMPORT_BUCKETS,
        )  # fmt: skip
        self.reconciliations = Counter(
            "bridge_reconciliations", "Reconciliations after ambiguous attempts, by result.",
            ["result"], registry=r,
        )  # fmt: skip
        self.upstream_429 = Counter("bridge_upstream_429", "429 answers from Didit.", registry=r)
        self.pacer_wait_seconds = Counter(
            "bridge_pacer_wait_seconds", "Seconds imports waited for the quota pacer.", registry=r
        )
        self.deliveries = Counter(
            "bridge_deliveries", "Delivery attempts by destination and result.",
            ["destination", "result"], registry=r,
        )  # fmt: skip
        self.token_erasures = Counter(
            "bridge_token_erasures", "Share tokens erased after their notification was final.",
            registry=r,
        )  # fmt: skip
        self.alerts = Counter("bridge_alerts", "Alerts raised, by kind.", ["kind"], registry=r)
        self._snapshot = _SnapshotCollector()
        r.register(self._snapshot)

    def set_snapshot_source(self, source: SnapshotSource | None) -> None:
        """Set the sync callback read at each scrape for the gauges in ``SNAPSHOT_GAUGES``.

        It returns a mapping from gauge key (``queue_depth``...) to value; a missing key leaves
        that gauge without a sample. It must not block: return a cached store snapshot.
        """
        self._snapshot.source = source

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type, for ``GET /metrics``."""
        return _generate_latest(self.registry), METRICS_CONTENT_TYPE
