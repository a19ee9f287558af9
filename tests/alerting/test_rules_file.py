"""A rules file with a mistake is refused at load with the file, the line and the reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelcycle.alerting.config import AccuracyRule, DeviceAnomalyRule, ModelStaleRule
from modelcycle.alerting.rules_file import RulesFileError, load_rules
from tests.support.cli import invoke_cli


def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_shipped_default_rules_load_with_a_36_hour_stale_rule() -> None:
    config = load_rules(None)
    stale = [r for r in config.rules.values() if isinstance(r, ModelStaleRule)]
    assert [r.max_age_hours for r in stale] == [36.0]
    kinds = {r.type for r in config.rules.values()}
    assert kinds == {
        "model_stale",
        "accuracy",
        "training_failed",
        "training_sla_missed",
        "drift",
        "device_anomaly",
    }


def test_a_complete_file_loads_into_typed_rules(tmp_path: Path) -> None:
    path = _rules(
        tmp_path,
        """\
        channels:
          ops: {type: webhook, url: "https://alerts.example.eu/hook", secret_env: HOOK_SECRET}
          acme: {type: slack, url_env: ACME_SLACK_URL, customer: C001}
        rules:
          accuracy-low:
            type: accuracy
            model: sensor-fault-classifier
            threshold: 0.9
            direction: below
            window_days: 7
            channels: [ops]
          devices: {type: device_anomaly, threshold: 0.1, consecutive: 4}
        """,
    )
    config = load_rules(path)
    accuracy = config.rules["accuracy-low"]
    assert isinstance(accuracy, AccuracyRule) and accuracy.threshold == 0.9
    devices = config.rules["devices"]
    assert isinstance(devices, DeviceAnomalyRule) and devices.consecutive == 4
    assert config.channels["acme"].customer == "C001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """\
            rules:
              stale: {type: model_stale}
              oops:
                type: model_stael
            """,
            ":4: rules.oops: unknown type 'model_stael'",
        ),
        (
            """\
            rules:
              low:
                type: accuracy
                model: m
                threshold: high
            """,
            ":5: rules.low.threshold: Input should be a valid number",
        ),
        (
            """\
            channels:
              ops: {type: webhook, url: "https://x.example"}
            rules:
              stale:
                type: model_stale
                channels: [ops, pager]
            """,
            ":6: rules.stale.channels: no channel named 'pager' (channels: ops)",
        ),
        (
            """\
            rules:
              low:
                type: accuracy
                model: m
                threshold: 0.9
                direction: sideways
            """,
            ":6: rules.low.direction: Input should be 'below' or 'above'",
        ),
        ("rules: [unclosed\n", ": not valid YAML"),
        ("- just\n- a list\n", ":1: the rules file must be a mapping"),
    ],
)
def test_mistakes_name_the_file_line_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = _rules(tmp_path, text)
    with pytest.raises(RulesFileError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)


def test_the_cli_refuses_a_bad_rules_file_in_one_line(tmp_path: Path) -> None:
    path = _rules(tmp_path, "rules:\n  x:\n    type: nope\n")
    env = {"MODELCYCLE_HOME": str(tmp_path), "MODELCYCLE_ALERT_RULES": str(path)}
    result = invoke_cli("alerts", "check", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"{path}:3: rules.x: unknown type 'nope'" in result.stderr.replace("\n", "")


def test_a_missing_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="does not exist"):
        load_rules(tmp_path / "absent.yaml")
