"""Problems found in a configuration: where, as a path of keys and indexes, and what."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]  # a location below the validated value, and a message


class Problems(ValueError):
    """Several problems under one value; ``load`` reports each at its own key and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{format_path(loc)}: {m}" if loc else m for loc, m in problems))


def raise_problems(problems: Sequence[Problem]) -> None:
    """Raise ``Problems`` if there are any; a validator's way to report several at once."""
    if problems:
        raise Problems(problems)


def format_path(loc: Sequence[str | int]) -> str:
    """``("rules", 0, "then", "workflow_id")`` -> ``"rules[0].then.workflow_id"``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text
