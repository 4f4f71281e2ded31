"""Checks across sections: rule names, unreachable rules, names a rule refers to, and
``vendor_data`` placeholders that would copy a partner's share token; and the rule's name on
every problem found in a rule."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from bridge.config.fields import dot_path_steps
from bridge.config.problems import Loc, Problem
from bridge.config.rules import template_placeholders

_DEFAULT_SHARE_TOKEN_PATH = "share_token"  # noqa: S105 - PartnerFields' default, not a secret


def reference_problems(
    rules: Sequence[object], partners: Mapping[str, object], destinations: Collection[str]
) -> list[Problem]:
    """Checks across sections. Written over plain data, so ``load`` can run them on a file whose
    other parts failed validation, and report everything in one go. ``partners`` maps each name
    to its ``Partner`` or, from a file that failed validation, to its raw mapping."""
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        name, when, then = rule.get("name"), rule.get("when") or {}, rule.get("then")
        if isinstance(name, str) and name in first_use:
            problems.append(
                (
                    ("rules", i, "name"),
                    f"duplicate rule name {name!r} (also rules[{first_use[name]}])",
                )
            )
        elif isinstance(name, str):
            first_use[name] = i
        if catch_all is not None:
            problems.append(
                (
                    ("rules", i),
                    f"unreachable: {_rule_label(rules, catch_all)} before it matches everything",
                )
            )
        if isinstance(when, Mapping):
            if catch_all is None and not any(when.values()):
                catch_all = i
            problems += _unknown_names(
                when.get("partner"), partners, ("rules", i, "when", "partner"), "partner"
            )
        if isinstance(then, Mapping):
            where = ("rules", i, "then", "destinations")
            problems += _unknown_names(then.get("destinations"), destinations, where, "destination")
            scope = when.get("partner") if isinstance(when, Mapping) else None
            problems += _token_placeholders(then.get("vendor_data"), scope, partners, i)
    return problems


def _token_placeholders(
    template: object, scope: object, partners: Mapping[str, object], i: int
) -> list[Problem]:
    """A ``{payload.x}`` placeholder where a partner the rule applies to sends its share token
    (``fields.share_token``) would copy the token, a credential, into ``vendor_data``: into
    Didit, the events and the admin API. Paths are compared as ``bridge.rules`` follows them
    (``tokens.0`` and ``tokens.00`` reach the same list item)."""
    if not isinstance(template, str):
        return []
    names = [scope] if isinstance(scope, str) else scope
    if isinstance(names, list | tuple):
        in_scope = [name for name in names if isinstance(name, str) and name in partners]
    else:  # no partner in ``when``: the rule applies to every partner
        in_scope = list(partners)
    token_paths: dict[tuple[str | int, ...], list[str]] = {}
    for name in in_scope:
        path = _share_token_path(partners[name])
        if path is not None:
            token_paths.setdefault(dot_path_steps(path), []).append(name)
    problems: list[Problem] = []
    for placeholder in dict.fromkeys(template_placeholders(template)):
        root, dot, path = placeholder.partition(".")
        owners = token_paths.get(dot_path_steps(path)) if root == "payload" and dot else None
        if owners:
            problems.append(
                (
                    ("rules", i, "then", "vendor_data"),
                    f"{{{placeholder}}} would copy the share token of "
                    f"partner{'s' if len(owners) > 1 else ''} "
                    f"{', '.join(map(repr, sorted(owners)))} (fields.share_token) into "
                    "vendor_data: the token is a credential, and vendor_data goes to Didit, "
                    "into events and to the admin API",
                )
            )
    return problems


def _share_token_path(partner: object) -> str | None:
    """Where a partner (a ``Partner``, or its raw mapping) sends the token; None if unknown."""
    if isinstance(partner, Mapping):
        fields = partner.get("fields") or {}
        path = (
            fields.get("share_token", _DEFAULT_SHARE_TOKEN_PATH)
            if isinstance(fields, Mapping)
            else None
        )
    else:
        path = getattr(getattr(partner, "fields", None), "share_token", None)
    return path if isinstance(path, str) and path else None


def _unknown_names(value: object, known: Collection[str], loc: Loc, kind: str) -> list[Problem]:
    names: list[tuple[Loc, object]] = [(loc, value)] if isinstance(value, str) else []
    if isinstance(value, list | tuple):
        names = [((*loc, k), name) for k, name in enumerate(value)]
    defined = ", ".join(sorted(known)) or "none"
    return [
        (where, f"unknown {kind} {name!r} (defined: {defined})")
        for where, name in names
        if isinstance(name, str) and name not in known
    ]


def _rule_label(rules: Sequence[object], i: int) -> str:
    """``rules[2] ('kyc')``: the index finds it in the file, the name in the logs and events."""
    rule = rules[i]
    name = rule.get("name") if isinstance(rule, Mapping) else None
    return f"rules[{i}] ({name!r})" if isinstance(name, str) else f"rules[{i}]"


def naming_the_rule(loc: Loc, message: str, rules: object) -> str:
    """``message``, when it is about a rule, led by that rule's name (``rule 'kyc': ...``):
    ``rules[2]`` finds the line, the name is what the logs, the events and the operator call
    it. Unchanged outside a rule, for a rule without a usable name, and for a problem with the
    name itself (a duplicate name says it already)."""
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int) or loc[2:3] == ("name",):
        return message
    if not isinstance(rules, list) or not 0 <= loc[1] < len(rules):
        return message
    rule = rules[loc[1]]
    name = rule.get("name") if isinstance(rule, Mapping) else None
    return f"rule {name!r}: {message}" if isinstance(name, str) and name.strip() else message
