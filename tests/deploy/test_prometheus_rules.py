"""The Prometheus files in deploy/prometheus: promtool accepts them, their alerts fire when they
should, and every metric the rules use is one the API exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelcycle.serving.app import build_services
from modelcycle.settings import Settings
from modelcycle.storage import open_store
from tests.serving.test_metrics_accuracy import api_metrics, exposition

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = "modelcycle-rules.yml"
METRIC_NAME = re.compile(r"\bmodelcycle_[a-zA-Z0-9_]+")


def promtool(*args: str) -> str:
    """Run promtool in the rules' folder (the files name each other relatively); fail with its
    output when it does not succeed."""
    executable = shutil.which("promtool")
    if executable is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus` provides it")
    result = subprocess.run(
        [executable, *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} exited {result.returncode}:\n{output}")
    return output


def test_rules_are_valid() -> None:
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", RULES)


def test_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "modelcycle-rules.test.yml")


def test_example_scrape_config_is_valid_and_loads_the_rules() -> None:
    output = promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in output


def _rule_expressions() -> dict[str, str]:
    document: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / RULES).read_text())
    return {
        rule["alert"]: str(rule["expr"])
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def _exposed_names(text: str) -> set[str]:
    """Family and sample names, so a counter counts as `x` and `x_total`."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def test_rules_use_only_metrics_the_api_exposes(tmp_path: Path) -> None:
    exposed = _exposed_names(exposition(api_metrics(tmp_path, lambda: {"m": 0.93})))
    # The background tasks' and prediction log's families, as the API wires them.
    app_services = build_services(
        Settings(home=tmp_path / "home"), lake=open_store(str(tmp_path / "lake"))
    )
    exposed |= _exposed_names(exposition(app_services.metrics))
    used = {alert: set(METRIC_NAME.findall(expr)) for alert, expr in _rule_expressions().items()}
    assert used["ModelcycleModelStale"] == {"modelcycle_model_age_seconds"}
    assert used["ModelcycleAccuracyLow"] == {"modelcycle_model_accuracy_7d"}
    unknown = {alert: names - exposed for alert, names in used.items() if names - exposed}
    assert not unknown, f"rules use metrics the API does not expose: {unknown}"
