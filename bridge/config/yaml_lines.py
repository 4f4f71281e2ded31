"""Safe YAML into plain data, keeping the line of every key and list item for error messages."""

from __future__ import annotations

import re
from typing import Any

import yaml

from bridge.config.problems import Loc
from bridge.errors import ConfigError, ConfigIssue


class _Loader(yaml.SafeLoader):
    """Safe YAML with YAML 1.2 core scalars: ``NO``, ``on`` and ``10:30`` stay strings."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # our own, not SafeLoader's


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("merge", r"^<<$", "<"),
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))

_YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # as YAML counts lines
_MAX_NODES = 100_000  # a document this large is an alias bomb, not a configuration
_MAP_TAG, _SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _YamlProblem(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        self.line, self.message = node.start_mark.line + 1, message
        super().__init__(message)


class Document:
    """Plain data built from the YAML node tree, with the line of every key and list item."""

    def __init__(self, loader: _Loader, root: yaml.Node) -> None:
        self.lines: dict[Loc, int] = {(): root.start_mark.line + 1}
        self.issues: list[tuple[Loc, int, str]] = []
        self._loader, self._budget = loader, _MAX_NODES
        self._open: set[int] = set()
        self._seen: set[int] = set()
        self.data = self._build(root, ())

    def line(self, loc: Loc) -> int:
        """The line of the deepest key of ``loc`` present in the file."""
        while loc not in self.lines:
            loc = loc[:-1]
        return self.lines[loc]

    def _build(self, node: yaml.Node, loc: Loc) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _YamlProblem(node, "the document is too large (aliases expand to too much)")
        if isinstance(node, yaml.ScalarNode):
            try:
                return self._loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError):
                raise _YamlProblem(node, f"invalid value for the tag {node.tag}") from None
        if id(node) in self._open:
            raise _YamlProblem(node, "an alias refers to its own parent")
        if node.tag not in (_MAP_TAG, _SEQ_TAG) and id(node) not in self._seen:
            self.issues.append((loc, node.start_mark.line + 1, f"unsupported YAML tag {node.tag}"))
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, loc)
            return [self._item(item, (*loc, i), item) for i, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))
            self._seen.add(id(node))

    def _item(self, node: yaml.Node, loc: Loc, at: yaml.Node) -> Any:
        """Build ``node`` as the value at ``loc``, whose line is where ``at`` (key or item) is."""
        self.lines[loc] = at.start_mark.line + 1
        return self._build(node, loc)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        if id(node) not in self._seen:  # an alias visits a node again: report its keys once
            self._check_duplicates(node, loc)
        self._loader.flatten_mapping(node)  # applies "<<" merge keys
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append((loc, key_node.start_mark.line + 1, "a key must be a string"))
                continue
            result[key_node.value] = self._item(value_node, (*loc, key_node.value), key_node)
        return result

    def _check_duplicates(self, node: yaml.MappingNode, loc: Loc) -> None:
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and not key_node.tag.endswith(":merge"):
                line = key_node.start_mark.line + 1
                if key_node.value in first:
                    where = (*loc, key_node.value)
                    self.issues.append(
                        (where, line, f"duplicate key (also at line {first[key_node.value]})")
                    )
                first.setdefault(key_node.value, line)


def parse(text: str, source: str) -> Document:
    """Parse one YAML document; a syntax error raises ``ConfigError`` at its line in ``source``."""

    def fail(line: int | None, message: str) -> ConfigError:
        parts = _YAML_LINE_BREAK.split(text)  # an error at the very end is on the last line
        last = max(1, len(parts) - (parts[-1] == ""))
        return ConfigError([ConfigIssue(source, min(line, last) if line else line, "", message)])

    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = len(_YAML_LINE_BREAK.findall(text, 0, exc.position)) + 1
        raise fail(line, "invalid YAML: a control character is not allowed") from None
    try:
        root = loader.get_single_node()
        if root is None:
            raise fail(None, "the file is empty")
        return Document(loader, root)
    except _YamlProblem as exc:
        raise fail(exc.line, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise fail(mark.line + 1 if mark else None, f"invalid YAML: {_yaml_message(exc)}") from None
    except yaml.YAMLError as exc:
        raise fail(None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise fail(None, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem, context = exc.problem or "", exc.context or ""
    if problem.startswith("but ") and context:  # "expected a single document ... but found ..."
        return f"{context} {problem}"
    return f"{problem} ({context})" if problem and context else problem or context or "syntax error"
