"""Descriptions of the configuration's keys, for its JSON Schema.

One source: the trailing comments of ``config/bridge.example.yaml`` (in the package as
``example.yaml``), so the example a person reads and the schema an editor shows say the same.
A key the example leaves commented out (``# jwks_file: x.json  # what it is``) counts too.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from bridge.config.problems import Loc
from bridge.config.yaml_lines import parse

_TRAILING = re.compile(r"\s#\s+(?P<text>.+?)\s*$")
_COMMENTED_KEY = re.compile(r"^(?P<indent>\s*)#\s(?P<key>[a-z_]+):\s.*?\s#\s+(?P<text>.+?)\s*$")


def example_text() -> str:
    return (resources.files("bridge.config") / "example.yaml").read_text(encoding="utf-8")


def key_comments(text: str) -> dict[Loc, str]:
    """Each key's trailing comment in the YAML ``text``, by its path (list items by index)."""
    document = parse(text, "example.yaml")
    lines = text.splitlines()
    found: dict[Loc, str] = {}
    by_line: dict[int, Loc] = {}
    for loc, number in document.lines.items():
        if not loc or isinstance(loc[-1], int):
            continue
        by_line.setdefault(number, loc)
        match = _TRAILING.search(lines[number - 1])
        if match is not None:
            found[loc] = match["text"]
    for number, line in enumerate(lines, start=1):
        commented = _COMMENTED_KEY.match(line)
        if commented is None:
            continue
        sibling = _sibling_above(lines, by_line, number, len(commented["indent"]))
        if sibling is not None:
            found.setdefault((*sibling[:-1], commented["key"]), commented["text"])
    return found


def _sibling_above(
    lines: list[str], by_line: dict[int, Loc], number: int, indent: int
) -> Loc | None:
    for above in range(number - 1, 0, -1):
        text = lines[above - 1]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if len(text) - len(text.lstrip()) < indent:
            return None
        loc = by_line.get(above)
        if loc is not None and len(text) - len(text.lstrip()) == indent:
            return loc
    return None


def describe(schema: dict[str, Any], example: str) -> dict[str, Any]:
    """``schema`` (a pydantic JSON Schema with ``$defs``) with each property the ``example``
    YAML comments given a ``description``; the first comment met for a model's key wins."""
    definitions = schema.get("$defs", {})
    comments = key_comments(example)

    def resolve(node: dict[str, Any], value: object) -> dict[str, Any] | None:
        if "$ref" in node:
            return resolve(definitions[node["$ref"].rsplit("/", 1)[1]], value)
        for choice in ("oneOf", "anyOf"):
            options = [resolve(option, value) for option in node.get(choice, ())]
            objects = [option for option in options if option and "properties" in option]
            if objects:
                return next((o for o in objects if _fits(o, value)), objects[0])
        return node

    def walk(node: dict[str, Any], value: object, loc: Loc) -> None:
        target = resolve(node, value)
        if target is None:
            return
        if "properties" in target and isinstance(value, dict):
            for key, item in value.items():
                prop = target["properties"].get(key)
                if prop is None:
                    continue
                text = comments.get((*loc, key))
                if text is not None:
                    prop.setdefault("description", text)
                walk(prop, item, (*loc, key))
        elif isinstance(target.get("additionalProperties"), dict) and isinstance(value, dict):
            for key, item in value.items():
                walk(target["additionalProperties"], item, (*loc, key))
        elif isinstance(target.get("items"), dict) and isinstance(value, list):
            for index, item in enumerate(value):
                walk(target["items"], item, (*loc, index))
        # keys the example comments out: described on the model they belong to
        if "properties" in target:
            for key, prop in target["properties"].items():
                text = comments.get((*loc, key))
                if text is not None:
                    prop.setdefault("description", text)

    walk(schema, parse(example, "example.yaml").data, ())
    return schema


def _fits(option: dict[str, Any], value: object) -> bool:
    """The union member that has every key of the value and whose ``const`` keys match it
    (auth ``scheme``)."""
    if not isinstance(value, dict) or not set(value) <= set(option["properties"]):
        return False
    for key, prop in option["properties"].items():
        if "const" in prop and value.get(key) != prop["const"]:
            return False
    return True
