"""The architecture diagram of docs/architecture.md, drawn from code (`make diagram`).

The `diagrams` package ships the icons and hands the graph to Graphviz's `dot` (Debian package
`graphviz`, installed by `make tools`). Run as a script it writes `docs/architecture.png`; the test
in tests/docs/test_architecture_diagram.py renders it into a temporary folder, so a broken script
fails the suite rather than the next person who runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from diagrams import Cluster, Diagram, Edge
from diagrams.gcp.compute import GKE
from diagrams.gcp.database import SQL
from diagrams.gcp.devtools import ContainerRegistry
from diagrams.gcp.security import KMS
from diagrams.gcp.storage import GCS
from diagrams.onprem.ci import GithubActions
from diagrams.onprem.client import User, Users
from diagrams.onprem.compute import Server
from diagrams.onprem.database import Duckdb
from diagrams.onprem.mlops import Mlflow
from diagrams.onprem.monitoring import Prometheus
from diagrams.programming.flowchart import Action, Document, PredefinedProcess
from diagrams.programming.framework import FastAPI
from diagrams.saas.chat import Slack

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "architecture.png"
REGION = "europe-west3"

GRAPH = {"fontsize": "22", "pad": "0.4", "nodesep": "0.6", "ranksep": "1.2", "splines": "spline"}
NODE = {"fontsize": "12"}
EDGE = {"fontsize": "11"}
DATA = {"color": "darkgreen"}
MODEL = {"color": "firebrick"}
PEOPLE = {"color": "royalblue", "style": "bold"}
CONTROL = {"color": "gray40", "style": "dashed"}


def _data_flow() -> None:
    """Devices → raw logs → the daily run → the registry → the API → the customer and approver."""
    devices = Server("devices\n(simulator in demo)")
    customer = Users("customer's browser")
    approver = User("approver")
    channels = Slack("alert channels\nwebhook · Slack · email")
    ci = GithubActions("CI/CD\nlint · test · build · scan")

    with Cluster(f"GCP {REGION} (EU only; CMEK, no public buckets)"):
        registry_image = ContainerRegistry("Artifact Registry\none modelcycle image")
        kms = KMS("Cloud KMS\ncustomer-managed keys")
        with Cluster("Cloud Storage"):
            raw = GCS("raw device logs\nraw/YYYY-MM-DD/*.csv")
            lake = GCS("lake: Parquet\nreadings · quarantine · features\nscores · predictions")
            artifacts = GCS("MLflow artifacts\nONNX + native, versioned")
        with Cluster("Cloud SQL for PostgreSQL"):
            store = SQL("modelcycle store\nusers · keys · evaluations\nalerts · release requests")
            backends = SQL("MLflow backend\nDagster storage")

        with Cluster("GKE Autopilot: prod namespace"):
            with Cluster("Dagster"):
                webserver = PredefinedProcess("webserver")
                daemon = PredefinedProcess("daemon\nschedule · sensors\nK8s run launcher")
                code = PredefinedProcess("code server\nassets · checks")
                with Cluster("run workers (one K8s Job per daily run)"):
                    ingest = Duckdb("ingest\nscreen · SQL rules")
                    features = Action("features\nhourly windows")
                    training = Action("training\nLightGBM · IsolationForest\nONNX export + parity")
                    gate = Action("gate + release request\nmetrics · customers")
                    monitoring = Action("scoring · evaluation\ndrift (PSI)")
                    alerting = Action("alert rules\nstale model · accuracy")
            mlflow = Mlflow("MLflow server\ntracking · registry\nproxies artifacts")
            with Cluster("prediction API (uvicorn, autoscaled)"):
                api = FastAPI("API /v1\nONNX Runtime (sha256-verified)\nshadow: challenger")
                prediction_log = Document("prediction log\n(off the request path)")
            dashboard = FastAPI("web dashboard\nmodel health · devices\nrelease decisions")
            prometheus = Prometheus("Prometheus\n/metrics · rules")

        with Cluster("GKE Autopilot: dev namespace"):
            dev = GKE("same image and manifests\ndev overlay · auto-approve")

    devices >> Edge(label="CSV logs", **DATA) >> raw >> Edge(**DATA) >> ingest
    ingest >> Edge(label="validated Parquet", **DATA) >> lake
    lake >> Edge(**DATA) >> features >> Edge(**DATA) >> training
    training >> Edge(label="runs: params, metrics\nversions + sha256", **MODEL) >> mlflow
    mlflow >> Edge(label="artifacts", **MODEL) >> artifacts
    training >> Edge(**MODEL) >> gate >> Edge(label="challenger", **MODEL) >> mlflow
    mlflow >> Edge(label="champion alias\n(poll · webhook)", **MODEL) >> api
    lake >> Edge(**DATA) >> monitoring >> Edge(label="accuracy over time", **DATA) >> store
    store >> Edge(**DATA) >> alerting >> Edge(label="alerts", **PEOPLE) >> channels
    api >> Edge(**DATA) >> prediction_log >> Edge(**DATA) >> lake
    api >> Edge(label="predictions\ndevice anomalies", **PEOPLE) >> dashboard
    dashboard >> Edge(**PEOPLE) >> customer
    gate >> Edge(label="release request", **PEOPLE) >> store
    approver >> Edge(label="approve / reject", **PEOPLE) >> dashboard
    dashboard >> Edge(label="decision → alias move", **PEOPLE) >> mlflow
    daemon >> Edge(**CONTROL) >> code
    daemon >> Edge(label="launches", **CONTROL) >> ingest
    webserver >> Edge(**CONTROL) >> code
    [daemon, mlflow] >> Edge(**CONTROL) >> backends
    prometheus >> Edge(label="scrapes", **CONTROL) >> [api, dashboard]
    prometheus >> Edge(label="rules fire", **PEOPLE) >> channels
    kms >> Edge(**CONTROL) >> [raw, lake, artifacts]
    ci >> Edge(label="image", **CONTROL) >> registry_image
    registry_image >> Edge(label="dev tag", **CONTROL) >> dev
    dev >> Edge(label="promotion: image tag\n+ approved release", **PEOPLE) >> api


def render(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the diagram to `output` (a `.png`) and return its path."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with Diagram(
        "modelcycle: from device logs to a customer's browser and an approver's decision",
        filename=str(output.with_suffix("")),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=GRAPH,
        node_attr=NODE,
        edge_attr=EDGE,
    ):
        _data_flow()
    return output


if __name__ == "__main__":
    print(render(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT))
