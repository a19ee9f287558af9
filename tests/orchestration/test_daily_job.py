"""The daily Dagster job, materialized in-process on simulated data against a real MLflow server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import time_machine
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.freshness import FreshnessDaemon

from modelcycle.errors import InvalidInputError, StorageError
from modelcycle.lake.ingest import ingest_day
from modelcycle.orchestration.definitions import build_definitions
from modelcycle.orchestration.keys import CLASSIFIER_KEY, DETECTOR_KEY, GATE_CHECK, QUALITY_CHECK
from modelcycle.orchestration.resources import ModelcycleResource
from modelcycle.orchestration.sensors import DAILY_JOB
from modelcycle.settings import Settings
from tests.orchestration.small_fleet import small_fleet_env
from tests.support.cli import invoke_cli
from tests.support.registry import PrefixedModels, server_client
from tests.support.servers import MlflowServer, unique_name

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Orchestrated(PrefixedModels):
    prefix: str
    env: dict[str, str]
    defs: dg.Definitions


@pytest.fixture
def orchestrated(
    tmp_path: Path, mlflow_sqlite_server: MlflowServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Orchestrated]:
    prefix = unique_name("dagster")
    env = small_fleet_env(tmp_path, mlflow_sqlite_server, prefix, monkeypatch)
    yield Orchestrated(prefix=prefix, env=env, defs=build_definitions(Settings()))


def _run(
    defs: dg.Definitions, instance: dg.DagsterInstance, day: str, selection: Any = None
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(DAILY_JOB)
    return job.execute_in_process(
        partition_key=day,
        instance=instance,
        raise_on_error=False,
        asset_selection=selection,
    )


def _metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _freshness(instance: dg.DagsterInstance) -> dict[str, str]:
    """One pass of the daemon's freshness check, in this process, and the states it stored."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="modelcycle.orchestration.definitions", attribute="defs"),
        location_name="modelcycle",
    )
    target = InProcessWorkspaceLoadTarget(origin)
    with WorkspaceProcessContext(instance, target) as workspace:
        for _ in FreshnessDaemon().run_iteration(workspace):
            pass
    records = instance.get_freshness_state_records([CLASSIFIER_KEY, DETECTOR_KEY])
    return {key.to_user_string(): record.freshness_state.value for key, record in records.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_a_day_runs_from_logs_to_registered_gated_models_that_go_stale_after_36_hours(
    orchestrated: Orchestrated,
) -> None:
    with dg.instance_for_test() as instance:
        first = _run(
            orchestrated.defs,
            instance,
            "2026-01-01",
            [dg.AssetKey("readings"), dg.AssetKey("features")],
        )
        assert first.success
        result = _run(orchestrated.defs, instance, "2026-01-02")
        assert result.success, [e.message for e in result.all_events if e.is_failure]

        checks = _checks(result)
        assert checks[("readings", QUALITY_CHECK)].passed
        assert checks[("classifier_model", GATE_CHECK)].passed
        assert checks[("anomaly_model", GATE_CHECK)].passed

        classifier = _metadata(instance, CLASSIFIER_KEY)
        assert classifier["registered_model"] == orchestrated.classifier
        assert classifier["version"] == "1"
        assert classifier["mlflow_run"].startswith(orchestrated.env["MODELCYCLE_TRACKING_URI"])
        assert classifier["mlflow_run"].endswith(classifier["run_id"])
        assert 0 < classifier["accuracy"] <= 1
        assert classifier["training_days"] == 2
        detector = _metadata(instance, DETECTOR_KEY)
        assert detector["registered_model"] == orchestrated.detector

        client = server_client(orchestrated.env["MODELCYCLE_TRACKING_URI"])
        run = client.get_run(classifier["run_id"])
        assert run.data.tags["modelcycle.window_end"].startswith("2026-01-03")

        scores = _metadata(instance, dg.AssetKey("scores"))
        assert scores[f"{orchestrated.classifier} version"] == "1"
        assert instance.get_latest_materialization_event(dg.AssetKey("alerts")) is not None

        # 36 hours later with no new training: Dagster's freshness check calls both models
        # stale, and the alert clock raises `model_stale` from the registry's own dates.
        assert _freshness(instance) == {"anomaly_model": "PASS", "classifier_model": "PASS"}
        with time_machine.travel(datetime.now(UTC) + timedelta(hours=37), tick=True):
            assert _freshness(instance) == {"anomaly_model": "FAIL", "classifier_model": "FAIL"}
            tick = orchestrated.defs.resolve_sensor_def("alert_clock").evaluate_tick(
                dg.build_sensor_context(
                    instance=instance,
                    resources={"modelcycle": ModelcycleResource()},
                    repository_def=orchestrated.defs.get_repository_def(),
                )
            )
        assert f"model_stale:{orchestrated.classifier}" in (tick.skip_message or "")
        assert "classifier_model FAIL" in (tick.skip_message or "")


def test_a_missing_day_fails_its_quality_check_and_trains_nothing(
    orchestrated: Orchestrated,
) -> None:
    with dg.instance_for_test() as instance:
        result = _run(orchestrated.defs, instance, "2026-01-05")  # never simulated
        assert not result.success
        check = _checks(result)[("readings", QUALITY_CHECK)]
        assert not check.passed
        assert "2026-01-05" in (check.description or "")
        assert instance.get_latest_materialization_event(CLASSIFIER_KEY) is None
    client = server_client(orchestrated.env["MODELCYCLE_TRACKING_URI"])
    assert client.search_model_versions(f"name='{orchestrated.classifier}'") == []


def shipped_daily_job() -> dg.JobDefinition:
    """The daily job as the code location builds it, for `reconstructable` (module level)."""
    return build_definitions(Settings()).resolve_job_def(DAILY_JOB)


def test_a_step_that_fails_twice_then_succeeds_ends_as_a_successful_run_under_the_jobs_executor(
    orchestrated: Orchestrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `execute_job` runs the job's own executor (`execute_in_process` would force in-process):
    # the steps run in the run's process, so the patched ingest below is the one they call
    assert shipped_daily_job().executor_def.name == dg.in_process_executor.name
    attempts: list[int] = []

    def flaky_ingest(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) <= 2:
            raise StorageError("s3://lake: connection reset by peer (injected)")
        return ingest_day(*args, **kwargs)

    monkeypatch.setattr("modelcycle.orchestration.assets.ingest_day", flaky_ingest)
    with (
        dg.instance_for_test() as instance,
        dg.execute_job(
            dg.reconstructable(shipped_daily_job),
            instance,
            tags={"dagster/partition": "2026-01-01"},
            asset_selection=[dg.AssetKey("readings")],
        ) as result,
    ):
        assert result.success
        assert len(attempts) == 3
        retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
        assert len(retried) == 2
        assert _metadata(instance, dg.AssetKey("readings"))["rows_written"] > 0


def test_bad_data_fails_the_step_at_once_instead_of_retrying(
    orchestrated: Orchestrated, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def unreadable_ingest(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        raise InvalidInputError("devices.csv: column 'device_id' is missing")

    monkeypatch.setattr("modelcycle.orchestration.assets.ingest_day", unreadable_ingest)
    with dg.instance_for_test() as instance:
        result = _run(orchestrated.defs, instance, "2026-01-01", [dg.AssetKey("readings")])
        assert not result.success
        assert len(attempts) == 1  # retrying cannot fix a wrong file
        (failure,) = result.get_step_failure_events()
        assert failure.step_failure_data.user_failure_data is not None
        assert "column 'device_id' is missing" in (
            failure.step_failure_data.user_failure_data.description or ""
        )


def _garble_most_logs(raw: Path, day: str) -> None:
    """Nine devices in ten write unreadable timestamps: their rows all go to the quarantine."""
    for index, log in enumerate(sorted((raw / day).glob("device-*.csv"))):
        if index % 10 == 0:
            continue
        header, *rows = log.read_text().splitlines()
        log.write_text("\n".join([header, *("garbled" + row[19:] for row in rows)]) + "\n")


def test_a_mostly_quarantined_day_trains_nothing_and_the_alert_says_why(
    orchestrated: Orchestrated, tmp_path: Path
) -> None:
    _garble_most_logs(tmp_path / "raw", "2026-01-02")
    with dg.instance_for_test() as instance:
        result = _run(orchestrated.defs, instance, "2026-01-02")
        assert not result.success
        check = _checks(result)[("readings", QUALITY_CHECK)]
        assert not check.passed
        assert "quarantined" in (check.description or "")
        assert instance.get_latest_materialization_event(CLASSIFIER_KEY) is None

        # what the daemon's failure sensor does with this run
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        failure = record.dagster_event
        assert failure is not None
        sensor = orchestrated.defs.resolve_sensor_def("record_failed_runs")
        sensor(
            dg.build_run_status_sensor_context(
                sensor_name="record_failed_runs",
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=run,
                resources={"modelcycle": ModelcycleResource()},
            ).for_run_failure()
        )
    listed = invoke_cli("alerts", "list", "--json", env=orchestrated.env)
    assert listed.returncode == 0, listed.stderr
    (alert,) = [a for a in json.loads(listed.stdout) if a["key"] == "training_failed"]
    assert "readings data_quality failed" in alert["summary"]
    assert "quarantined" in alert["summary"]
    client = server_client(orchestrated.env["MODELCYCLE_TRACKING_URI"])
    assert client.search_model_versions(f"name='{orchestrated.classifier}'") == []
