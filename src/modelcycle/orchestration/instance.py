"""The Dagster instance folder under the modelcycle home: dagster.yaml and workspace.yaml.

Written once and then left to the user: run monitoring (the training SLA) and run retries are on;
storage is SQLite in the folder unless MODELCYCLE_DAGSTER_POSTGRES_URL names a PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from modelcycle.errors import InvalidInputError
from modelcycle.settings import Settings

WORKSPACE = {
    "load_from": [
        {
            "python_module": {
                "module_name": "modelcycle.orchestration.definitions",
                "location_name": "modelcycle",
            }
        }
    ]
}


def instance_config(settings: Settings) -> dict[str, object]:
    config: dict[str, object] = {
        "run_monitoring": {"enabled": True, "poll_interval_seconds": 15},
        "run_retries": {"enabled": True, "max_retries": 1},
        "telemetry": {"enabled": False},
    }
    if settings.dagster_postgres_url is not None:
        # the URL is read from the environment at run time: it never lands in the file
        config["storage"] = {
            "postgres": {"postgres_url": {"env": "MODELCYCLE_DAGSTER_POSTGRES_URL"}}
        }
    return config


def prepare_instance(settings: Settings) -> tuple[Path, Path]:
    """DAGSTER_HOME with its dagster.yaml, the workspace file (existing files are kept), and
    Dagster's storage created."""
    _check_postgres_url(settings)
    home = settings.resolved_dagster_home
    home.mkdir(parents=True, exist_ok=True)
    instance_file = home / "dagster.yaml"
    if not instance_file.exists():
        instance_file.write_text(yaml.safe_dump(instance_config(settings), sort_keys=False))
    workspace = home / "workspace.yaml"
    if not workspace.exists():
        workspace.write_text(yaml.safe_dump(WORKSPACE, sort_keys=False))
    _create_storage(home)
    return home, workspace


def _create_storage(home: Path) -> None:
    """Create (or migrate) Dagster's storage now, in one process: the webserver, the daemon and
    a `dagster` command started together would otherwise race to create the same tables."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)):
        pass


def _check_postgres_url(settings: Settings) -> None:
    """Dagster would find a missing driver only when it opens its storage, in a traceback."""
    if settings.dagster_postgres_url is None:
        return
    from modelcycle.store.database import redact, require_driver

    url = settings.dagster_postgres_url.get_secret_value()
    parsed = require_driver(url, "MODELCYCLE_DAGSTER_POSTGRES_URL")
    if parsed.get_backend_name() != "postgresql":
        raise InvalidInputError(
            f"MODELCYCLE_DAGSTER_POSTGRES_URL {redact(url)} is not a PostgreSQL URL: "
            "use postgresql+psycopg2://…"
        )
