"""YAML -> validated, frozen Settings (docs/architecture.md).

The models are the whole configuration language (``settings``, ``partners``, ``rules``,
``destinations``); their validators check everything that can be checked before the first
request arrives. ``load(path)`` (``loading``) reads YAML keeping line numbers (``yaml_lines``),
interpolates ``${VAR}`` and ``${VAR:-default}`` (``interpolation``), validates, and either returns
a ``Settings`` or raises one ``ConfigError`` listing every problem as
``file:line: key.path: message`` (``issues``, ``checks``).
"""

from __future__ import annotations

from bridge.config.destinations import Destination, parse_duration
from bridge.config.loading import (
    Loaded,
    load,
    load_text,
    load_text_with_warnings,
    load_with_warnings,
)
from bridge.config.operations import OperationsConfig, load_for_operations
from bridge.config.partners import (
    AUTH_SCHEMES,
    ApiKeyAuth,
    HmacAuth,
    JwtAuth,
    Partner,
    PartnerAuth,
    PartnerFields,
    StandardWebhooksAuth,
)
from bridge.config.problems import Loc, Problem, format_path
from bridge.config.rules import (
    MAX_REGEX_VALUE_CHARS,
    ExistsMatcher,
    Matcher,
    RegexMatcher,
    Rule,
    RuleThen,
    RuleWhen,
    Scalar,
)
from bridge.config.settings import (
    AdminSettings,
    DiditSettings,
    DiditWebhooks,
    LoggingSettings,
    ServerSettings,
    Settings,
    StoreSettings,
    TelemetrySettings,
)
from bridge.config.warnings import settings_warnings

__all__ = [
    "AUTH_SCHEMES",
    "MAX_REGEX_VALUE_CHARS",
    "AdminSettings",
    "ApiKeyAuth",
    "Destination",
    "DiditSettings",
    "DiditWebhooks",
    "ExistsMatcher",
    "HmacAuth",
    "JwtAuth",
    "Loaded",
    "Loc",
    "LoggingSettings",
    "Matcher",
    "OperationsConfig",
    "Partner",
    "PartnerAuth",
    "PartnerFields",
    "Problem",
    "RegexMatcher",
    "Rule",
    "RuleThen",
    "RuleWhen",
    "Scalar",
    "ServerSettings",
    "Settings",
    "StandardWebhooksAuth",
    "StoreSettings",
    "TelemetrySettings",
    "format_path",
    "load",
    "load_for_operations",
    "load_text",
    "load_text_with_warnings",
    "load_with_warnings",
    "parse_duration",
    "settings_warnings",
]
