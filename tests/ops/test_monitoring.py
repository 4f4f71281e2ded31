"""The Prometheus rules and the Grafana dashboard under ``deploy/`` fit the bridge they ship with:
every series and label they query is one a running ``bridge serve`` exposes on ``/metrics``,
``promtool`` accepts the rules and their unit tests (one per alert), and each alert's
``what_to_do`` is the one the README gives."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bridge.app import Health, MetricsEndpoint
from bridge.app.metrics import store_snapshot
from bridge.observability import Metrics
from bridge.sandbox.control import SandboxControl
from bridge.store import open_store
from tests.ops.scenario import rules_to, tokens
from tests.support.bridge_process import SandboxTarget
from tests.support.fixtures import MakeBridge
from tests.support.recording_sink import RecordingSink

ROOT = Path(__file__).parents[2]
RULES = ROOT / "deploy" / "prometheus" / "share-bridge-rules.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "share-bridge-rules.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "share-bridge.json"
README = ROOT / "README.md"

# PromQL words that are not series: aggregations, keywords and their grouping clauses.
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk"}
)
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left", "group_right"}
)
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(
    r"(?<![\w:.])(?P<name>[A-Za-z_:][\w:]*+)\s*(?P<matchers>\{[^}]*\})?(?!\s*\()"
)
_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*\"")


def selectors(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """The series an expression reads, each with the labels it matches on, and the labels it
    groups by (``by (...)``, ``on (...)``)."""
    text = re.sub(r"\$\w+", "", expr)  # Grafana variables ($__rate_interval)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    grouped = {label.strip() for group in _GROUPING.findall(text) for label in group.split(",")}
    text = _GROUPING.sub(" ", text)
    found: dict[str, set[str]] = {}
    for match in _SELECTOR.finditer(text):
        name = match.group("name")
        if name in _AGGREGATIONS or name in _KEYWORDS:
            continue
        labels = set(_MATCHER.findall(match.group("matchers") or ""))
        found.setdefault(name, set()).update(labels)
    return found, grouped - {""}


def test_the_selector_reader_finds_series_labels_and_groupings() -> None:
    """The reader the comparison relies on: it misses no series and takes no function for one."""
    series, grouped = selectors(
        'sum by (destination, result) (rate(bridge_deliveries_total{result!="x"}[$__range]))'
        " / on (instance) group_left max(bridge_ready offset 5m) > 0 unless absent(up)"
    )
    assert series == {"bridge_deliveries_total": {"result"}, "bridge_ready": set(), "up": set()}
    assert grouped == {"destination", "result", "instance"}


def rule_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", ()):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(json.loads(DASHBOARD.read_text())["panels"])


def exposed(text: str) -> dict[str, set[str]]:
    """Sample name -> the label names its samples carry, from a Prometheus exposition."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


@pytest.mark.e2e
def test_rules_and_dashboard_query_only_what_metrics_exposes(
    make_bridge: MakeBridge, control: SandboxControl, target: SandboxTarget, sink: RecordingSink
) -> None:
    """A bridge that has imported (after a reconcile), delivered and refused a reload shows a
    sample of every labelled family: each queried series and label must be among them."""
    bridge = make_bridge(rules=rules_to(target, "crm"), destinations={"crm": sink.destination()})
    control.set_faults("import", ambiguous_rate=1.0, ambiguous_modes=["504"])
    [share] = tokens(control, target, 1)
    accepted = bridge.post_share("acme", {"share_token": share, "customer": "c1"})
    assert bridge.wait_for([accepted.json()["id"]]) == {accepted.json()["id"]: "imported"}
    bridge.config_path.write_text("partners: [not, a, mapping]\n")
    assert bridge.admin("POST", "/reload").status_code == 400
    metrics = bridge.http.get(f"{bridge.base_url}/metrics")
    assert metrics.status_code == 200
    series = exposed(metrics.text)
    # the scenario reached every family the files query, or the label check below proves little
    assert "bridge_deliveries_total" in series, sorted(series)

    expressions = [*rule_expressions(), *dashboard_expressions()]
    assert len(expressions) >= 20
    wrong: list[str] = []
    for where, expr in expressions:
        used, grouped = selectors(expr)
        assert used, f"{where}: no series found in {expr!r}"
        for name, labels in used.items():
            if name not in series:
                wrong.append(f"{where}: {name} is not on /metrics")
            elif labels - series[name]:
                wrong.append(f"{where}: {name} has no label {sorted(labels - series[name])}")
        labels_in_scope = set().union(*(series.get(name, set()) for name in used))
        if grouped - labels_in_scope - {"le"} or ("le" in grouped and "le" not in labels_in_scope):
            wrong.append(f"{where}: grouping by {sorted(grouped - labels_in_scope)}")
    assert wrong == []


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (Debian: apt-get install prometheus)")
    return subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    alerts = {name for name, _expr in rule_expressions()}
    firing = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", ())
        if case.get("exp_alerts")
    }
    assert firing == alerts


def readme_table(heading_row: str) -> list[list[str]]:
    """The rows of the README table whose header row starts with ``heading_row``."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading_row))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def rule_annotations() -> dict[str, dict[str, str]]:
    return {
        rule["alert"]: rule["annotations"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }


def test_the_readme_lists_each_prometheus_alert_with_its_what_to_do() -> None:
    rows = readme_table("| alert | fires when | what to do |")
    rules = rule_annotations()
    assert [name.strip("`") for name, _when, _todo in rows] == list(rules)
    for name, _when, todo in rows:
        if name != "`ShareBridgeAlert`":
            assert rules[name.strip("`")]["what_to_do"] == todo


def test_each_kind_of_the_readme_alert_table_gets_its_what_to_do(tmp_path: Path) -> None:
    """For each kind the bridge raises (README's table), the Prometheus alert that fires says
    what the README says to do: the two with a rule of their own, the others by ShareBridgeAlert
    (checked by promtool rendering its template)."""
    own_rule = {
        "destination_disabled": "ShareBridgeDestinationDisabled",
        "config_reload_refused": "ShareBridgeConfigReloadRefused",
    }
    rules = rule_annotations()
    cases = []
    for kinds, _meaning, todo in readme_table("| kind | what it means | what to do |"):
        for kind in re.findall(r"`(\w+)`", kinds):
            if kind in own_rule:
                assert todo.lower() in rules[own_rule[kind]]["what_to_do"].lower()
                continue
            cases.append(
                {
                    "interval": "1m",
                    "input_series": [
                        {"series": f'bridge_alerts_total{{kind="{kind}"}}', "values": "_ 1x5"}
                    ],
                    "alert_rule_test": [
                        {
                            "eval_time": "2m",
                            "alertname": "ShareBridgeAlert",
                            "exp_alerts": [
                                {
                                    "exp_labels": {"severity": "critical", "kind": kind},
                                    "exp_annotations": {
                                        "summary": f"share-bridge raised alert {kind}",
                                        "what_to_do": todo,
                                    },
                                }
                            ],
                        }
                    ],
                }
            )
    assert len(cases) >= 7
    shutil.copy(RULES, tmp_path / RULES.name)
    test_file = tmp_path / "kinds.test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [RULES.name], "tests": cases}))
    tested = promtool("test", "rules", test_file.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_bridge_ready_follows_what_readyz_answers(tmp_path: Path) -> None:
    """The gauge is 1 exactly when /readyz would answer 200: workers stopped or a store that
    does not answer make it 0."""
    workers = {"running": True}

    async def scenario() -> list[float | None]:
        store = open_store(f"sqlite:///{tmp_path / 'bridge.db'}", clock=time.time)
        metrics = Metrics()
        health = Health(store=store, workers_running=lambda: workers["running"])
        endpoint = MetricsEndpoint(
            metrics, snapshot=lambda: store_snapshot(store), readiness=health.ready
        )
        seen: list[float | None] = []
        for running in (True, False, True):
            workers["running"] = running
            await endpoint.refresh()
            seen.append(metrics.registry.get_sample_value("bridge_ready"))
        await store.close()
        await endpoint.refresh()  # the store is gone
        seen.append(metrics.registry.get_sample_value("bridge_ready"))
        return seen

    assert asyncio.run(scenario()) == [1.0, 0.0, 1.0, 0.0]
