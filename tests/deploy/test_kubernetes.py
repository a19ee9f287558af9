"""deploy/k8s: both overlays build with `kubectl kustomize`, validate against the Kubernetes
schemas, and say what the issue asks: probes, limits, HPA and PDB for the API, Secrets referenced
only, non-root read-only pods, deny-by-default NetworkPolicies, Dagster runs as Jobs, TLS
Ingress."""

from __future__ import annotations

from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.commands import unknown_modelcycle_command
from tests.deploy.conftest import ROOT
from tests.deploy.policy import OVERLAYS, pod_spec, render_overlay

KUBERNETES_VERSION = "1.33.0"  # GKE's REGULAR channel at the time of writing


@cache
def manifests(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(render_overlay(ROOT, overlay))


def find(overlay: str, kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in manifests(overlay) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{overlay}: expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def containers(overlay: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    found = []
    for doc in manifests(overlay):
        pod = pod_spec(doc)
        if pod is not None:
            found += [(doc["metadata"]["name"], pod, c) for c in pod["containers"]]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds_and_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    docs = manifests(overlay)
    assert {d["kind"] for d in docs} >= {
        "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "NetworkPolicy", "Ingress", "ConfigMap", "ServiceAccount", "Role", "RoleBinding",
    }  # fmt: skip
    for doc in docs:
        # strict: an unknown or misspelt field is an error, not silently dropped by the cluster
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert all(d["metadata"].get("namespace") == f"modelcycle-{overlay}" for d in docs
               if d["kind"] != "Namespace")  # fmt: skip


def test_a_misspelt_field_is_refused_by_the_schema_check() -> None:
    api = yaml.safe_load(yaml.safe_dump(find("dev", "Deployment", "api")))
    api["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_is_probed_bounded_autoscaled_and_kept_available(overlay: str) -> None:
    api = find(overlay, "Deployment", "api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    hpa = find(overlay, "HorizontalPodAutoscaler", "api")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "api"}  # fmt: skip
    pdb = find(overlay, "PodDisruptionBudget", "api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        api["spec"]["template"]["metadata"]["labels"].items()
    )
    # a node drain can always proceed, and never takes the last replicas at once
    if "minAvailable" in pdb["spec"]:
        assert 0 < pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    else:
        assert pdb["spec"]["maxUnavailable"] == 1
    for name, _pod, c in containers(overlay):
        assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), name
        assert {"cpu", "memory"} <= c["resources"]["limits"].keys(), name
        assert "readinessProbe" in c and "livenessProbe" in c, name


def test_prod_runs_more_api_replicas_and_asks_for_approval() -> None:
    dev, prod = (find(o, "HorizontalPodAutoscaler", "api")["spec"] for o in OVERLAYS)
    assert prod["minReplicas"] > dev["minReplicas"]
    settings = {o: find(o, "ConfigMap", "modelcycle-settings")["data"] for o in OVERLAYS}
    assert settings["dev"]["MODELCYCLE_ENVIRONMENT"] == "dev"
    assert settings["prod"]["MODELCYCLE_ENVIRONMENT"] == "prod"
    assert "prod" in settings["prod"]["MODELCYCLE_LAKE_URL"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_and_documented_never_inlined(overlay: str) -> None:
    assert not [d for d in manifests(overlay) if d["kind"] == "Secret"]
    referenced = set()
    for _name, pod, c in containers(overlay):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                referenced.add((ref["name"], ref["key"]))
        referenced |= {(v["secret"]["secretName"], "") for v in pod.get("volumes", [])
                       if "secret" in v}  # fmt: skip
    assert referenced
    deployment_doc = (ROOT / "docs" / "deployment.md").read_text()
    for secret, key in referenced:
        assert secret in deployment_doc and key in deployment_doc, (secret, key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_non_root_read_only_without_capabilities(overlay: str) -> None:
    for name, pod, c in containers(overlay):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 10000, name
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_a_modelcycle_command(overlay: str) -> None:
    for name, _pod, c in containers(overlay):
        assert unknown_modelcycle_command(c["command"]) is None, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_open_only_the_needed_flows(overlay: str) -> None:
    deny = find(overlay, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    api = find(overlay, "NetworkPolicy", "api-ingress")
    sources = [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for s in api["spec"]["ingress"][0]["from"]]  # fmt: skip
    assert sorted(sources) == ["ingress-nginx", "monitoring"]
    code = find(overlay, "NetworkPolicy", "dagster-code-server-ingress")
    callers = {s["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
               for s in code["spec"]["ingress"][0]["from"]}  # fmt: skip
    assert callers == {"dagster-webserver", "dagster-daemon", "dagster-run"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_dagster_daemon_launches_each_run_as_a_kubernetes_job(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    instance = find(overlay, "ConfigMap", "dagster-instance")
    config = yaml.safe_load(instance["data"]["dagster.yaml"])
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    monkeypatch.setenv("DAGSTER_K8S_NAMESPACE", f"modelcycle-{overlay}")  # the daemon's fieldRef
    launcher_schema = K8sRunLauncher.config_type()  # type: ignore[no-untyped-call]
    checked = process_config(launcher_schema, launcher["config"])
    assert checked.success, checked.errors
    assert launcher["config"]["instance_config_map"] == instance["metadata"]["name"]
    # the URL is read from the environment: prepare_instance keeps this file (docs/orchestration.md)
    assert config["storage"]["postgres"]["postgres_url"] == {
        "env": "MODELCYCLE_DAGSTER_POSTGRES_URL"
    }
    code_server = find(overlay, "Deployment", "dagster-code-server")
    c = code_server["spec"]["template"]["spec"]["containers"][0]
    current_image = next(e["value"] for e in c["env"] if e["name"] == "DAGSTER_CURRENT_IMAGE")
    assert current_image == c["image"]  # each run's Job runs the image deployed here
    daemon = find(overlay, "Deployment", "dagster-daemon")
    assert daemon["spec"]["template"]["spec"]["serviceAccountName"] == "dagster-daemon"
    role = find(overlay, "Role", "dagster-run-launcher")
    assert {"create"} <= set(role["rules"][0]["verbs"]) and role["rules"][0]["resources"][
        0
    ] == "jobs"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_and_the_dashboard_are_behind_a_tls_ingress(overlay: str) -> None:
    ingress = find(overlay, "Ingress", "modelcycle")
    hosts = {rule["host"]: rule["http"]["paths"][0]["backend"]["service"]["name"]
             for rule in ingress["spec"]["rules"]}  # fmt: skip
    assert sorted(hosts.values()) == ["api", "mlflow"]
    assert set(ingress["spec"]["tls"][0]["hosts"]) == set(hosts)
    mlflow = find(overlay, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert "basic-auth" in mlflow["command"]
