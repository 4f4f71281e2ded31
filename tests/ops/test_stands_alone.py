"""The repository stands alone: nothing in it points at the design briefing it was built from,
which is not shipped. What the code relies on is written in README.md and docs/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
# Assembled, so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join([r"DESIGN" + r"(\.md|\s*§)", r"shared" + r"/reference", r"\.\./" + "shared"])
)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = [ROOT / name.decode() for name in listed if name]
    return [path for path in files if path.is_file() and path.suffix != ".png"]


def test_no_file_cites_the_briefing_outside_the_repository() -> None:
    files = tracked_text_files()
    assert len(files) > 100, "git ls-files listed the repository"
    citing = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert citing == []
