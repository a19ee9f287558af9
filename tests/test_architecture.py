"""The layout stays as docs/architecture.md draws it: no cycles between packages, frameworks only
in the adapters, serving apart from training, nobody depending on the CLI, no module over 400
lines. Each rule is checked on the real code, and shown failing on a small made-up case."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.architecture import (
    ADAPTER_FRAMEWORKS,
    ADAPTERS,
    MAX_MODULE_LINES,
    Import,
    forbidden_imports,
    frameworks_in_core,
    import_graph,
    line_counts,
    oversized,
    package_cycles,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return import_graph(REPO / "src")


def _problems(problems: list[str]) -> str:
    return "\n".join(["", *problems])


def test_the_import_graph_is_read_from_the_source(imports: list[Import]) -> None:
    """Function-level imports count: a dependency hidden in a function is still a dependency."""
    targets = {(item.module, item.target) for item in imports}
    assert ("modelcycle.__main__", "modelcycle.cli.main") in targets
    assert any(
        item.module == "modelcycle.cli.train" and "recipe" in item.target for item in imports
    )


def test_no_packages_import_each_other(imports: list[Import]) -> None:
    assert not (problems := package_cycles(imports)), _problems(problems)


def test_only_the_adapters_use_typer_fastapi_starlette_or_dagster(imports: list[Import]) -> None:
    assert not (problems := frameworks_in_core(imports)), _problems(problems)


def test_serving_never_imports_training_and_nothing_imports_the_cli(imports: list[Import]) -> None:
    assert not (problems := forbidden_imports(imports)), _problems(problems)


def test_no_module_is_over_400_lines() -> None:
    counts = line_counts([REPO / "src", REPO / "bench"], REPO)
    assert "bench/serving.py" in counts
    assert not (problems := oversized(counts)), _problems(problems)


def test_the_architecture_doc_states_the_same_rules() -> None:
    """The doc and this test say the same: the adapters, the frameworks, the line limit."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    adapters = ", ".join(f"`{name}`" for name in sorted(ADAPTERS))
    frameworks = ", ".join(sorted(ADAPTER_FRAMEWORKS))
    assert f"adapters: {adapters}" in doc
    assert f"frameworks ({frameworks})" in doc
    assert f"{MAX_MODULE_LINES} lines" in doc


# Each rule on a small made-up case: it fails, and the message says where and why.


def _import(module: str, target: str, line: int = 1) -> Import:
    return Import(module, target, module.replace(".", "/") + ".py", line)


def test_a_cycle_between_packages_is_named_with_an_import_of_each_step() -> None:
    graph = [
        _import("modelcycle.monitoring.daily", "modelcycle.serving.model", 39),
        _import("modelcycle.serving.services", "modelcycle.monitoring.queries", 63),
        _import("modelcycle.serving.app", "modelcycle.settings"),
        _import("modelcycle.monitoring.daily", "modelcycle.monitoring.drift"),
    ]
    assert package_cycles(graph) == [
        "import cycle between packages monitoring -> serving -> monitoring "
        "(modelcycle/monitoring/daily.py:39 imports modelcycle.serving.model; "
        "modelcycle/serving/services.py:63 imports modelcycle.monitoring.queries)"
    ]
    assert package_cycles(graph[2:]) == []


def test_a_core_package_importing_dagster_is_refused() -> None:
    graph = [
        _import("modelcycle.training.recipe", "dagster", 7),
        _import("modelcycle.orchestration.assets", "dagster"),
        _import("modelcycle.serving.app", "fastapi"),
        _import("modelcycle.lake.ingest", "duckdb"),
    ]
    (problem,) = frameworks_in_core(graph)
    assert problem.startswith(
        "modelcycle/training/recipe.py:7: core package `training` imports dagster; only the "
        "adapters (cli, orchestration, serving) may use"
    )


def test_serving_importing_training_is_refused() -> None:
    (problem,) = forbidden_imports(
        [_import("modelcycle.serving.app", "modelcycle.training.runner")]
    )
    assert problem == (
        "modelcycle/serving/app.py:1: `serving` imports modelcycle.training.runner; `serving` "
        "must not depend on `training`"
    )


def test_importing_the_cli_from_outside_it_is_refused() -> None:
    graph = [
        _import("modelcycle.orchestration.stack", "modelcycle.cli.context", 12),
        _import("modelcycle.__main__", "modelcycle.cli.main"),
        _import("modelcycle.cli.main", "modelcycle.cli.train"),
    ]
    (problem,) = forbidden_imports(graph)
    assert problem.startswith(
        "modelcycle/orchestration/stack.py:12: `orchestration` imports modelcycle.cli.context; "
        "only the CLI itself and `__main__` may import `cli`"
    )


def test_a_module_over_the_limit_is_named_with_its_length() -> None:
    counts = {"bench/serving.py": 444, "src/modelcycle/settings.py": 199, "bench/x.py": 400}
    assert oversized(counts) == ["bench/serving.py has 444 lines (over 400): split it by concern"]


def test_the_prediction_api_starts_without_importing_mlflow_or_the_readers() -> None:
    """`modelcycle serve` starts from its verified cache: MLflow (and pandas under it) cost
    seconds and ~100 MiB, paid only when the dashboard or a registry read first needs them;
    polars, pyarrow and Alembic are imported by the first fleet page, prediction-log flush or
    schema check, not while the API starts."""
    import subprocess
    import sys

    heavy = ("mlflow", "pandas", "polars", "pyarrow", "alembic")
    probe = (
        "import sys; from modelcycle.serving.app import create_app; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
