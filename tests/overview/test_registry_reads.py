"""The dashboard's kept registry reads against a real MLflow server."""

from __future__ import annotations

import pytest

from modelcycle.errors import DataNotFoundError
from modelcycle.overview.registry_reads import RegistryReads
from tests.release.conftest import register_versions
from tests.support.registry import server_client
from tests.support.servers import MlflowServer, unique_name


def test_a_kept_read_shows_a_move_made_elsewhere_once_forgotten(
    mlflow_sqlite_server: MlflowServer,
) -> None:
    """Within the interval a page answers from what it read; `invalidate` (a decision, the
    webhook, a swapped served version) makes the next page read the registry anew."""
    client = server_client(mlflow_sqlite_server.tracking_uri)
    model = unique_name("kept-reads")
    first, second = register_versions(client, model, 2)
    reads = RegistryReads(client, ttl_seconds=3600)
    assert reads.aliases(model) == {"champion": first}
    assert [r.version for r in reads.versions(model, 10)] == [second, first]

    client.set_registered_model_alias(model, "champion", second)
    assert reads.aliases(model) == {"champion": first}

    reads.invalidate()
    assert reads.aliases(model) == {"champion": second}
    assert reads.versions(model, 10)[0].aliases == ["champion"]


def test_without_an_interval_every_read_asks_the_registry(
    mlflow_sqlite_server: MlflowServer,
) -> None:
    client = server_client(mlflow_sqlite_server.tracking_uri)
    model = unique_name("unkept-reads")
    first, second = register_versions(client, model, 2)
    reads = RegistryReads(client, ttl_seconds=0)
    assert reads.aliases(model) == {"champion": first}
    client.set_registered_model_alias(model, "champion", second)
    assert reads.aliases(model) == {"champion": second}


def test_a_model_not_registered_yet_is_not_remembered_as_missing(
    mlflow_sqlite_server: MlflowServer,
) -> None:
    client = server_client(mlflow_sqlite_server.tracking_uri)
    model = unique_name("late-model")
    reads = RegistryReads(client, ttl_seconds=3600)
    with pytest.raises(DataNotFoundError, match=model):
        reads.aliases(model)
    (first,) = register_versions(client, model, 1)
    assert reads.aliases(model) == {"champion": first}


def test_the_model_page_reads_only_the_newest_versions(
    mlflow_sqlite_server: MlflowServer,
) -> None:
    client = server_client(mlflow_sqlite_server.tracking_uri)
    model = unique_name("many-versions")
    versions = register_versions(client, model, 4)
    reads = RegistryReads(client, ttl_seconds=0)
    assert [r.version for r in reads.versions(model, 2)] == versions[:1:-1]
