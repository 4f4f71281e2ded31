"""A warning for ``vendor_data`` templates that could render alike for two partners' shares.

Reconciliation adopts a session by its ``vendor_data``; share tokens' claims are unverified, so
a template that does not begin with the partner's name lets one partner's customer render the
value of another's (``{payload.customer.id}`` is ``42`` at both). ``{partner}`` followed by a
character no partner name holds (``acme:`` vs ``acme-eu:``) keeps every partner's values apart.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bridge.config.problems import Problem
from bridge.config.rules import Rule

# Partner names are [a-z0-9_-]: any other character ends the name, so no prefix is ambiguous.
_PARTNER_FIRST = re.compile(r"\{partner\}(?:$|[^a-z0-9_{-])")


def vendor_data_warnings(rules: Sequence[Rule]) -> list[Problem]:
    """A warning (location, message) for each rule whose ``vendor_data`` does not start with
    ``{partner}`` and a separator."""
    return [
        (
            ("rules", index, "then", "vendor_data"),
            'does not start with {partner} and a separator (like "{partner}:..."): two '
            "partners' shares could render the same vendor_data, and reconciliation could "
            "take one partner's session for another's",
        )
        for index, rule in enumerate(rules)
        if not _PARTNER_FIRST.match(rule.then.vendor_data)
    ]
