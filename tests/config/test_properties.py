"""Properties of loading: bad input of any shape ends as a ConfigError, never as a crash."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.config import Settings, load_text
from bridge.errors import ConfigError
from tests.config.conftest import EXAMPLE

YAMLISH = st.text(
    alphabet=st.sampled_from(list("ab:-[]{}!&*|>'\"#%@,? \n\t$0.x<=~\\")), max_size=80
)
EXAMPLE_LINES = EXAMPLE.read_text().splitlines()


def load_or_issues(text: str, environ: dict[str, str]) -> Settings | ConfigError:
    try:
        return load_text(text, source_name="fuzz.yaml", environ=environ)
    except ConfigError as error:
        return error


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=150), YAMLISH))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    outcome = load_or_issues(text, {})
    assert isinstance(outcome, ConfigError)  # nothing this short is a whole configuration
    assert outcome.issues
    assert all(issue.file == "fuzz.yaml" for issue in outcome.issues)
    lines = len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1  # YAML's line breaks
    assert all(issue.line is None or 1 <= issue.line <= lines for issue in outcome.issues)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(EXAMPLE_LINES) - 1),
            st.sampled_from(["delete", "duplicate", "dedent", "garble"]),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_an_edited_example_loads_or_reports_lines_inside_the_file(
    edits: list[tuple[int, str]], example_environ: dict[str, str]
) -> None:
    lines = list(EXAMPLE_LINES)
    for index, edit in edits:
        index = min(index, len(lines) - 1)
        if edit == "delete":
            del lines[index]
        elif edit == "duplicate":
            lines.insert(index, lines[index])
        elif edit == "dedent":
            lines[index] = lines[index][2:]
        else:
            lines[index] = lines[index].replace(":", " ", 1).replace("]", "[")
    outcome = load_or_issues("\n".join(lines) + "\n", example_environ)
    if isinstance(outcome, ConfigError):
        assert outcome.issues
        assert all(issue.line is None or 1 <= issue.line <= len(lines) for issue in outcome.issues)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1).filter(str.strip)
)
def test_an_interpolated_value_arrives_verbatim(
    value: str, example_environ: dict[str, str]
) -> None:
    """A variable's value is never interpolated again, whatever it holds (``${X}`` too)."""
    text = EXAMPLE.read_text().replace('token: "${BRIDGE_ADMIN_TOKEN}"', 'token: "[${ADMIN}]"')
    settings_ = load_text(text, environ={**example_environ, "ADMIN": value})
    assert settings_.admin is not None
    assert settings_.admin.token.get_secret_value() == f"[{value}]"


def test_the_edit_strategy_reaches_both_outcomes(example_environ: dict[str, str]) -> None:
    """Guard for the property above: untouched, the example loads; garbled, it does not."""
    assert isinstance(load_or_issues("\n".join(EXAMPLE_LINES), example_environ), Settings)
    broken = [
        line.replace(":", " ", 1) if "workflow_id" in line else line for line in EXAMPLE_LINES
    ]
    outcome = load_or_issues("\n".join(broken), example_environ)
    assert isinstance(outcome, ConfigError)
