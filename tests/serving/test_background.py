"""A background round outlives any error and keeps count; `/readyz` reads the tasks' health."""

from __future__ import annotations

from pathlib import Path

from modelcycle.errors import RegistryError
from modelcycle.serving.background import FAILING_AFTER_ROUNDS, TaskHealth, run_round
from modelcycle.serving.schemas import Health
from modelcycle.serving.status import Readiness


def test_a_round_survives_any_error_and_its_task_counts_as_failing_after_a_few(
    tmp_path: Path,
) -> None:
    health = TaskHealth("registry_poll")
    missing = tmp_path / "gone.json"
    run_round(health, lambda: missing.read_text() and None)  # a plain OSError, not ours
    assert (health.errors, health.consecutive_failures) == (1, 1)
    assert str(health.last_error).startswith("FileNotFoundError: ")

    def unreachable() -> None:
        raise RegistryError("registry at http://127.0.0.1:1 is unreachable")

    for _ in range(FAILING_AFTER_ROUNDS - 1):
        run_round(health, unreachable)
    assert health.failing
    assert health.last_error == "registry at http://127.0.0.1:1 is unreachable"

    run_round(health, lambda: None)
    assert not health.failing
    assert (health.errors, health.consecutive_failures) == (FAILING_AFTER_ROUNDS, 0)
    assert health.last_success is not None


def test_readiness_is_503_only_when_predictions_cannot_be_answered_or_a_task_stopped() -> None:
    ready = Readiness(missing=[], stopped=[], failing=[])
    assert (ready.status_code, ready.body()) == (200, Health(status="ready"))

    degraded = Readiness(missing=[], stopped=[], failing=["registry_poll", "serving_cache"])
    assert degraded.status_code == 200
    assert degraded.body() == Health(
        status="degraded", problems=["registry_poll failing", "serving_cache failing"]
    )

    stopped = Readiness(missing=[], stopped=["prediction_log"], failing=[])
    assert stopped.status_code == 503
    assert stopped.body() == Health(status="not ready", problems=["prediction_log stopped"])

    missing = Readiness(missing=["m"], stopped=[], failing=[])
    assert (missing.status_code, missing.body().missing) == (503, ["m"])
