"""Environment profiles: `<profiles dir>/<environment>.env` under the variables, and another
environment's settings from its profile alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelcycle.errors import InvalidInputError
from modelcycle.settings import Settings, load_settings, read_profile, settings_for
from tests.support.cli import invoke_cli

DEPLOY = Path(__file__).parents[1] / "deploy" / "profiles"


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MODELCYCLE_TRACKING_URI", "MODELCYCLE_DATABASE_URL", "MODELCYCLE_GATE_MARGIN"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "profiles"
    folder.mkdir()
    monkeypatch.setenv("MODELCYCLE_HOME", str(tmp_path))
    monkeypatch.setenv("MODELCYCLE_PROFILES_DIR", str(folder))
    return folder


def test_the_environment_profile_fills_in_what_the_variables_leave_unset(
    profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (profiles / "dev.env").write_text(
        "MODELCYCLE_TRACKING_URI=http://mlflow-dev.internal:5000\nMODELCYCLE_GATE_MARGIN=0.05\n"
    )
    monkeypatch.setenv("MODELCYCLE_ENVIRONMENT", "dev")
    monkeypatch.setenv("MODELCYCLE_GATE_MARGIN", "0.1")

    settings = load_settings()

    assert settings.tracking_uri == "http://mlflow-dev.internal:5000"
    assert settings.gate_margin == 0.1  # the variable wins
    monkeypatch.setenv("MODELCYCLE_ENVIRONMENT", "prod")  # no prod.env: plain variables
    assert load_settings() == Settings()


def test_another_environment_comes_from_its_profile_not_this_process(
    profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCYCLE_TRACKING_URI", "http://mlflow-dev.internal:5000")
    monkeypatch.setenv("MODELCYCLE_CLASSIFIER_MODEL_NAME", "fault-clf")
    current = load_settings()
    with pytest.raises(InvalidInputError, match=r"no profile for prod: create .*prod\.env"):
        settings_for("prod", current)
    (profiles / "prod.env").write_text("MODELCYCLE_TRACKING_URI=http://mlflow-prod:5000\n")
    with pytest.raises(InvalidInputError, match="must set MODELCYCLE_DATABASE_URL"):
        settings_for("prod", current)
    (profiles / "prod.env").write_text(
        "MODELCYCLE_TRACKING_URI=http://mlflow-prod:5000\n"
        "MODELCYCLE_DATABASE_URL=sqlite:////srv/prod.db\n"
    )

    prod = settings_for("prod", current)

    assert prod.environment == "prod" and prod.tracking_uri == "http://mlflow-prod:5000"
    assert prod.classifier_model_name == "fault-clf"  # unset in the profile: inherited
    assert not prod.resolved_release_auto_approve


def test_a_misspelt_profile_setting_is_one_line_naming_the_file(profiles: Path) -> None:
    (profiles / "dev.env").write_text("MODELCYCLE_TRACKING_URL=http://mlflow-dev:5000\n")

    result = invoke_cli(
        "release",
        "list",
        env={"MODELCYCLE_ENVIRONMENT": "dev", "MODELCYCLE_PROFILES_DIR": str(profiles)},
    )

    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "dev.env" in line and "MODELCYCLE_TRACKING_URL is not a modelcycle setting" in line


@pytest.mark.parametrize("name", ["dev.env.example", "prod.env.example"])
def test_the_shipped_example_profiles_are_valid(name: str) -> None:
    values = read_profile(DEPLOY / name)
    assert values["tracking_uri"] and values["database_url"]
    Settings(**values)  # type: ignore[arg-type]
