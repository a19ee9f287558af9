"""What a new user reads when the demo's output goes into a pipe (CI, a log file, `| less`).

A child process on purpose: the pipe, and the process's own logging set-up, are what is tested.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cli import run_cli

CLASSIFIER = "sensor-fault-classifier"
DETECTOR = "sensor-anomaly-detector"
# MLflow's own line format ("2026/01/02 10:00:00 INFO mlflow.store.db.utils: ...") and its prints
_THIRD_PARTY = re.compile(
    r"\b(INFO|DEBUG)\b.*\b(mlflow|dagster|alembic|urllib3)\b|Registered model|"
    r"Successfully registered|Created version|UserWarning|fontManager"
)


def _assert_clean(output: str) -> None:
    assert "Traceback" not in output and "Stack Trace" not in output, output
    assert "\r" not in output and "%|" not in output, output  # no progress bar redrawn in place
    assert not _THIRD_PARTY.search(output), _THIRD_PARTY.search(output)
    assert not [line for line in output.splitlines() if line.lstrip().startswith("{")], output


@pytest.mark.slow
def test_the_demo_and_its_next_steps_print_clean_lines_into_a_pipe(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"MODELCYCLE_HOME": str(home), "COLUMNS": "80"}

    demo = run_cli("demo", "--devices", "2", "--sensors", "8", "--days", "4", env=env)

    assert demo.returncode == 0, demo.stderr
    _assert_clean(demo.stdout + demo.stderr)
    day_lines = [line for line in demo.stderr.splitlines() if line.startswith("  2026-01-")]
    assert len(day_lines) == 4, demo.stderr  # one line per day, none wrapped mid-phrase
    trained = [line for line in day_lines if " ok " in line]
    assert trained, demo.stderr
    for line in trained:  # models named as in the registry, never by their Dagster asset
        assert f"{CLASSIFIER} v" in line and f"{DETECTOR} v" in line, line
        assert "classifier_model" not in line and "anomaly_model" not in line, line
        assert line.rstrip().endswith(("labels not in yet", *"0123456789")), line
    summary = [line for line in demo.stdout.splitlines() if "daily runs through Dagster" in line]
    assert len(summary) == 1 and summary[0].endswith("each model"), demo.stdout
    # which version serves each model, and why: moved by the local policy, or the first one
    for model in (CLASSIFIER, DETECTOR):
        (serving,) = [line for line in demo.stdout.splitlines() if f"{model}: champion" in line]
        why = r"approved automatically for 2026-01-0\d, gates passed"
        assert re.match(rf"{model}: champion v\d+ \({why}\)", serving), serving
    assert any(
        line.startswith("alerts firing:") and "chart:" in line for line in demo.stdout.splitlines()
    )

    # the dashboard's address and the demo admin's one-time password, which signs in
    assert "dashboard     http://127.0.0.1:8000/dashboard" in demo.stdout
    signin = re.search(r"sign in as demo with password (\S+) \(local only", demo.stdout)
    assert signin, demo.stdout
    _assert_demo_password(home, signin.group(1))

    # the chatter is not lost: it is in the log file the summary names
    log_file = home / "logs" / "modelcycle.log"
    assert str(log_file.resolve()) in demo.stdout
    logged = log_file.read_text()
    assert "Creating initial MLflow database tables" in logged
    assert "ingested day" in logged

    for command in (["models", "list"], ["monitor", "report"], ["alerts", "list"]):
        result = run_cli(*command, env=env)
        assert result.returncode == 0, result.stderr
        _assert_clean(result.stdout + result.stderr)


def _assert_demo_password(home: Path, password: str) -> None:
    from modelcycle.access.passwords import verify_sign_in
    from modelcycle.settings import Settings
    from modelcycle.store import open_store

    store = open_store(Settings(home=home))
    try:
        with store.session() as session:
            signed = verify_sign_in(session=session, name="demo", password=password)
    finally:
        store.close()
    assert signed.identity.role.value == "admin"
