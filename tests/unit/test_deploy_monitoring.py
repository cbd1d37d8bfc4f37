"""deploy/: the Prometheus alert rules and the Grafana dashboard watch metrics the service
exports. `promtool check rules` and `promtool test rules` run where promtool is
installed (Debian's `prometheus` package); a structure check runs everywhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import ocrvault.telemetry.metrics  # noqa: F401 - registers every metric

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "ocrvault-alerts.yml"
RULES_TEST = DEPLOY / "prometheus" / "ocrvault-alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "ocrvault-dashboard.json"
METRIC = re.compile(r"\bocrvault_[a-z0-9_]+")
# What issue 20 asks an operator be alerted to, and the rule that does it.
REQUIRED_ALERTS = {"OcrvaultReaperLagHigh", "OcrvaultQueueAgeHigh", "OcrvaultErrorRateHigh",
                   "OcrvaultSandboxKills", "OcrvaultKeyProviderDown"}


def exported_series() -> set[str]:
    """Every sample name ocrvault's metrics expose (counters' _total, histograms' _bucket...)."""
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("ocrvault_"):
            kind = family.type
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                        }.get(kind, ("",))
            names.update(family.name + suffix for suffix in suffixes)
    return names


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_is_complete_and_the_required_ones_are_there() -> None:
    found = rules()
    assert {rule["alert"] for rule in found} >= REQUIRED_ALERTS
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert METRIC.search(rule["expr"]), rule["alert"]


def test_every_metric_an_alert_names_is_exported() -> None:
    named = {name for rule in rules() for name in METRIC.findall(rule["expr"])}
    assert named - exported_series() == set()


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


def test_every_dashboard_panel_queries_a_metric_the_service_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert graphs and all(panel.get("targets") for panel in graphs)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    missing = {(title, name) for title, expr in dashboard_queries()
               for name in METRIC.findall(expr) if name not in exported_series()}
    assert missing == set()
    assert all(METRIC.search(expr) for _title, expr in dashboard_queries())


def test_a_metric_the_dashboard_does_not_show_is_a_decision() -> None:
    """Each exported metric is on the dashboard; one added to metrics.py shows up here."""
    shown = {name for _title, expr in dashboard_queries() for name in METRIC.findall(expr)}
    families = {name.removesuffix(suffix) for name in shown
                for suffix in ("_total", "_bucket", "_count", "_sum", "") if name.endswith(suffix)}
    exported = {family.name for family in REGISTRY.collect()
                if family.name.startswith("ocrvault_")}
    assert exported - families == set()


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install "
                    "prometheus); the structure checks above still ran")
@pytest.mark.parametrize("command", [["check", "rules", RULES.name],
                                     ["test", "rules", RULES_TEST.name]])
def test_promtool_accepts_the_rules_and_their_unit_tests(command: list[str]) -> None:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, *command], cwd=RULES.parent, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
