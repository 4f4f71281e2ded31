"""Checks across sections: rule names, unreachable rules, and names a rule refers to."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from bridge.config.problems import Loc, Problem


def reference_problems(
    rules: Sequence[object], partners: Collection[str], destinations: Collection[str]
) -> list[Problem]:
    """Checks across sections. Written over plain data, so ``load`` can run them on a file whose
    other parts failed validation, and report everything in one go."""
    problems: list[Problem] = []
    first_use: dict[str, int] = {}
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            continue
        name, when, then = rule.get("name"), rule.get("when") or {}, rule.get("then")
        if isinstance(name, str) and name in first_use:
            problems.append(
                (("rules", i, "name"), f"duplicate rule name (rules[{first_use[name]}])")
            )
        elif isinstance(name, str):
            first_use[name] = i
        if catch_all is not None:
            problems.append((("rules", i), f"unreachable: rules[{catch_all}] matches everything"))
        if isinstance(when, Mapping):
            if catch_all is None and not any(when.values()):
                catch_all = i
            problems += _unknown_names(
                when.get("partner"), partners, ("rules", i, "when", "partner"), "partner"
            )
        if isinstance(then, Mapping):
            where = ("rules", i, "then", "destinations")
            problems += _unknown_names(then.get("destinations"), destinations, where, "destination")
    return problems


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
