"""Training alerts from what the store recorded: a failed run, a run past its maximum run time
(Dagster's run monitoring stopped it), and no success by the day's deadline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from modelcycle.alerting.engine import CheckResult
from modelcycle.alerting.facts import check_alerts
from modelcycle.alerting.rules_file import parse_rules
from modelcycle.settings import Settings
from modelcycle.storage.configured import lake_store, raw_store
from modelcycle.store import Store, open_store
from modelcycle.store.tables import TrainingRun
from modelcycle.store.training_runs import record_failure, recorded_training

DAY = date(2026, 3, 2)
RULES = parse_rules(
    """
rules:
  training-failed: {type: training_failed}
  training-sla: {type: training_sla_missed, deadline: "06:00"}
""",
    "rules.yaml",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(Settings(home=tmp_path))
    yield store
    store.close()


def _check(store: Store, tmp_path: Path, now: datetime) -> CheckResult:
    settings = Settings(home=tmp_path)
    return check_alerts(
        settings,
        store,
        lake=lake_store(settings),
        raw=raw_store(settings),
        now=now,
        config=RULES,
    )


def _succeed(store: Store) -> None:
    with recorded_training(store, DAY, trigger="dagster"):
        pass


def test_a_failed_training_fires_until_one_succeeds(store: Store, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), recorded_training(store, DAY):
        raise RuntimeError("lake unreachable\nstack trace follows")
    early = datetime.now(UTC).replace(hour=1, minute=0)
    assert _check(store, tmp_path, early).firing == ["training_failed"]
    _succeed(store)
    assert _check(store, tmp_path, early).firing == []


def test_a_run_stopped_at_its_maximum_run_time_misses_the_sla_and_is_not_a_failure(
    store: Store, tmp_path: Path
) -> None:
    # the killed run never finished its own row: the failure sensor finishes it
    with store.session() as session:
        session.add(
            TrainingRun(day=DAY, status="running", started_at=datetime.now(UTC), trigger="dagster")
        )
    record_failure(
        store,
        DAY,
        "Exceeded maximum runtime of 3600 seconds.",
        trigger="dagster",
        status="timed_out",
    )
    with store.session() as session:
        runs = session.query(TrainingRun).all()
        assert [(r.status, r.error) for r in runs] == [
            ("timed_out", "Exceeded maximum runtime of 3600 seconds.")
        ]
    early = datetime.now(UTC).replace(hour=1, minute=0)  # before the 06:00 deadline
    result = _check(store, tmp_path, early)
    assert result.firing == [f"training_sla_missed:{DAY}"]

    _succeed(store)  # a late success resolves it
    resolved = _check(store, tmp_path, early)
    assert resolved.firing == []
    assert ("resolved", f"training_sla_missed:{DAY}") in resolved.events


def test_no_success_by_the_deadline_misses_the_sla(store: Store, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    before = now.replace(hour=5, minute=59)
    after = now.replace(hour=6, minute=1)
    assert _check(store, tmp_path, before).firing == []
    assert _check(store, tmp_path, after).firing == [f"training_sla_missed:{after.date()}"]
