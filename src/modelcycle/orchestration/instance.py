"""The Dagster instance folder under the modelcycle home: dagster.yaml and workspace.yaml.

dagster.yaml turns run monitoring (the training SLA) and run retries on; storage is SQLite in the
folder unless MODELCYCLE_DAGSTER_POSTGRES_URL names a PostgreSQL database. modelcycle owns the file
it wrote (a digest in its first line proves it untouched) and rewrites it, atomically, whenever
the settings ask for a different one. A file edited by hand is the user's and kept, unless it
contradicts MODELCYCLE_DAGSTER_POSTGRES_URL: then nothing runs on storage the user did not mean.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import structlog
import yaml

from modelcycle.errors import InvalidInputError
from modelcycle.settings import Settings

log = structlog.get_logger(__name__)

POSTGRES_URL_VARIABLE = "MODELCYCLE_DAGSTER_POSTGRES_URL"
_OWNED_MARK = "# modelcycle-owned sha256:"
_HEADER = (
    "# Written by modelcycle from the MODELCYCLE_* settings, and rewritten when they change.\n"
    "# Edit it and it is yours: modelcycle keeps it, but refuses to run when its storage\n"
    f"# disagrees with {POSTGRES_URL_VARIABLE}. Delete it to have modelcycle write it again.\n"
)

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
    return _instance_config(on_postgres=settings.dagster_postgres_url is not None)


def _instance_config(*, on_postgres: bool) -> dict[str, object]:
    config: dict[str, object] = {
        "run_monitoring": {"enabled": True, "poll_interval_seconds": 15},
        "run_retries": {"enabled": True, "max_retries": 1},
        "telemetry": {"enabled": False},
    }
    if on_postgres:
        # the URL is read from the environment at run time: it never lands in the file
        config["storage"] = {"postgres": {"postgres_url": {"env": POSTGRES_URL_VARIABLE}}}
    return config


def instance_file_text(settings: Settings) -> str:
    """dagster.yaml as modelcycle writes it for these settings, marked as modelcycle's own."""
    body = _HEADER + yaml.safe_dump(instance_config(settings), sort_keys=False)
    return f"{_OWNED_MARK}{_digest(body)}\n{body}"


def prepare_instance(settings: Settings) -> tuple[Path, Path]:
    """DAGSTER_HOME with a dagster.yaml in step with the settings, the workspace file (kept when
    present), and Dagster's storage created."""
    _check_postgres_url(settings)
    home = settings.resolved_dagster_home
    home.mkdir(parents=True, exist_ok=True)
    _sync_instance_file(home / "dagster.yaml", settings)
    workspace = home / "workspace.yaml"
    if not workspace.exists():
        _write_atomically(workspace, yaml.safe_dump(WORKSPACE, sort_keys=False))
    _create_storage(home)
    return home, workspace


def _sync_instance_file(path: Path, settings: Settings) -> None:
    wanted = instance_file_text(settings)
    if not path.exists():
        _write_atomically(path, wanted)
        return
    current = path.read_text()
    if current == wanted:
        return
    if _written_by_modelcycle(current):
        _write_atomically(path, wanted)
        storage = "PostgreSQL" if settings.dagster_postgres_url is not None else "SQLite"
        log.info("dagster.yaml rewritten for the settings", path=str(path), storage=storage)
        return
    _check_hand_edited(path, current, settings)


def _written_by_modelcycle(text: str) -> bool:
    """Marked and untouched since; or, unmarked, exactly what an earlier modelcycle wrote."""
    first, _, rest = text.partition("\n")
    if first.startswith(_OWNED_MARK):
        return first.removeprefix(_OWNED_MARK).strip() == _digest(rest)
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return config in (_instance_config(on_postgres=False), _instance_config(on_postgres=True))


def _check_hand_edited(path: Path, text: str, settings: Settings) -> None:
    """The user's file stays, as long as it uses the PostgreSQL URL exactly when one is set."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInputError(
            f"{path} is not valid YAML ({str(error).splitlines()[0]}): fix it, or delete it and "
            "modelcycle writes it again"
        ) from error
    reads_url = POSTGRES_URL_VARIABLE in yaml.safe_dump(config)
    if settings.dagster_postgres_url is not None and not reads_url:
        raise InvalidInputError(
            f"{path} was edited by hand and does not use {POSTGRES_URL_VARIABLE}, which is set: "
            "Dagster would ignore it; make the file's storage read it, or delete the file and "
            "modelcycle writes it again"
        )
    if settings.dagster_postgres_url is None and reads_url:
        raise InvalidInputError(
            f"{path} was edited by hand and reads {POSTGRES_URL_VARIABLE}, which is unset: set "
            "it, or delete the file and modelcycle writes it again (SQLite storage)"
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    """Dagster processes read these files at any time: they see the old one or the new one."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        "w", dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False
    )
    aside = Path(handle.name)
    try:
        with handle:
            handle.write(text)
        aside.replace(path)
    finally:
        aside.unlink(missing_ok=True)


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
    parsed = require_driver(url, POSTGRES_URL_VARIABLE)
    if parsed.get_backend_name() != "postgresql":
        raise InvalidInputError(
            f"{POSTGRES_URL_VARIABLE} {redact(url)} is not a PostgreSQL URL: "
            "use postgresql+psycopg2://…"
        )
