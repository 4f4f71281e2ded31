"""YAML -> validated, frozen Settings (DESIGN.md section 3).

The models are the whole configuration language (``settings``, ``partners``, ``rules``,
``destinations``); their validators check everything that can be checked before the first
request arrives. ``load(path)`` (``loading``) reads YAML keeping line numbers (``yaml_lines``),
interpolates ``${VAR}`` and ``${VAR:-default}`` (``interpolation``), validates, and either returns
a ``Settings`` or raises one ``ConfigError`` listing every problem as
``file:line: key.path: message`` (``issues``, ``checks``).
"""

from __future__ import annotations

from bridge.config.destinations import Destination, parse_duration
from bridge.config.loading import load, load_text
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

__all__ = [
    "AUTH_SCHEMES",
    "AdminSettings",
    "ApiKeyAuth",
    "Destination",
    "DiditSettings",
    "DiditWebhooks",
    "ExistsMatcher",
    "HmacAuth",
    "JwtAuth",
    "Loc",
    "LoggingSettings",
    "Matcher",
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
    "load_text",
    "parse_duration",
]
