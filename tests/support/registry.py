"""Settings that point the CLI and the API at one MLflow server under a prefix of their own."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.support.servers import MlflowServer

CLASSIFIER = "sensor-fault-classifier"
DETECTOR = "sensor-anomaly-detector"


def registry_env(home: Path, server: MlflowServer, prefix: str) -> dict[str, str]:
    """Experiment and model names start with `prefix`, so tests sharing a server never collide."""
    return {
        **server.env,
        "MODELCYCLE_HOME": str(home),
        "MODELCYCLE_EXPERIMENT_NAME": prefix,
        "MODELCYCLE_CLASSIFIER_MODEL_NAME": f"{prefix}-{CLASSIFIER}",
        "MODELCYCLE_ANOMALY_MODEL_NAME": f"{prefix}-{DETECTOR}",
    }


class PrefixedModels:
    """The two registered model names of a test that registers under its own `prefix`."""

    prefix: str

    @property
    def classifier(self) -> str:
        return f"{self.prefix}-{CLASSIFIER}"

    @property
    def detector(self) -> str:
        return f"{self.prefix}-{DETECTOR}"


def server_client(tracking_uri: str) -> MlflowClient:
    """A client whose registry is the same server: never MLflow's process-wide registry URI,
    which an in-process `connect_tracking` elsewhere in the session may have pointed away."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
