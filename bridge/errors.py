"""The error hierarchy. Every error a user can cause carries a stable ``code``.

The class docstring is the default message (as procrastinate does), so ``raise X()`` is readable
and ``raise X("detail")`` refines it. Messages never contain secrets or share tokens.
"""

from __future__ import annotations

from dataclasses import dataclass


class BridgeError(Exception):
    """share-bridge failed."""

    code: str = "bridge_error"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        if code is not None:
            self.code = code
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file, located as ``file:line: key.path: message``."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(BridgeError):
    """The configuration is invalid."""

    code = "invalid_config"

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class VerificationError(BridgeError):
    """The message's signature did not verify."""

    code = "invalid_signature"  # or missing_signature, timestamp_out_of_tolerance


class TokenError(BridgeError):
    """The share token is not a well-formed JWT."""

    code = "malformed_share_token"


class RoutingError(BridgeError):
    """No rule routes this notification."""

    code = "no_matching_rule"  # or vendor_data_unresolved


class StoreUnavailable(BridgeError):
    """The store cannot be reached; nothing was stored."""

    code = "store_unavailable"


class LeaseLost(BridgeError):
    """Another worker owns this job now; the write was not applied."""

    code = "lease_lost"
