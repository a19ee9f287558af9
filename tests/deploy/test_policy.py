"""tests/deploy/policy.py refuses the four kinds of bad input of a deployment, each with a line
naming the file and why: a non-EU region, a public bucket, an inlined secret, a root container.
Each test breaks one thing in a copy of the repository's deployment files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.deploy.conftest import ROOT
from tests.deploy.policy import check_repository


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_repository_passes() -> None:
    assert check_repository(ROOT) == []


def test_a_region_outside_the_eu_is_refused(repo_copy: Path) -> None:
    edit(repo_copy / "deploy/terraform/variables.tf", '"europe-west3"', '"us-central1"')

    assert check_repository(repo_copy) == [
        "deploy/terraform/variables.tf: region 'us-central1' is not in the EU (data residency)"
    ]


def test_a_public_bucket_is_refused(repo_copy: Path) -> None:
    storage = repo_copy / "deploy/terraform/storage.tf"
    edit(
        storage,
        'public_access_prevention    = "enforced"',
        'public_access_prevention = "inherited"',
    )
    storage.write_text(storage.read_text() + '\n# member = "allUsers"\n')

    findings = check_repository(repo_copy)

    assert findings == [
        "deploy/terraform/storage.tf: bucket artifacts is not private: public_access_prevention "
        'must be "enforced"',
        "deploy/terraform/storage.tf: grants access to allUsers: a public resource",
    ]


def test_an_inlined_secret_is_refused_in_kubernetes_and_compose(repo_copy: Path) -> None:
    edit(
        repo_copy / "deploy/k8s/base/api.yaml",
        "valueFrom:\n                secretKeyRef: "
        "{name: modelcycle-secrets, key: MODELCYCLE_API_KEYS}",
        'value: "k3y-0f-the-api"',
    )
    edit(repo_copy / "deploy/compose.yaml", "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD}\n",
         "POSTGRES_PASSWORD: hunter2hunter2\n")  # fmt: skip
    secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: oops\nstringData:\n  k: v\n"
    (repo_copy / "deploy/k8s/overlays/prod/oops.yaml").write_text(secret)
    edit(repo_copy / "deploy/k8s/overlays/prod/kustomization.yaml", "  - namespace.yaml\n",
         "  - namespace.yaml\n  - oops.yaml\n")  # fmt: skip

    findings = check_repository(repo_copy)

    assert findings == [
        "deploy/compose.yaml: postgres sets POSTGRES_PASSWORD to a literal secret: use "
        "${POSTGRES_PASSWORD} from deploy/.env",
        "deploy/k8s/overlays/dev: Deployment api, container api has MODELCYCLE_API_KEYS written "
        "inline: use valueFrom.secretKeyRef",
        "deploy/k8s/overlays/prod: Secret oops is written in the manifests: create it out of band "
        "and reference it (secretKeyRef)",
        "deploy/k8s/overlays/prod: Deployment api, container api has MODELCYCLE_API_KEYS written "
        "inline: use valueFrom.secretKeyRef",
    ]


def test_a_container_running_as_root_is_refused(repo_copy: Path) -> None:
    edit(repo_copy / "Dockerfile", "USER 10001:10001", "USER root")
    edit(repo_copy / "deploy/k8s/base/mlflow.yaml", "runAsNonRoot: true", "runAsNonRoot: false")
    edit(repo_copy / "deploy/compose.yaml", "    command: [\"modelcycle\", \"serve\"",
         "    user: root\n    command: [\"modelcycle\", \"serve\"")  # fmt: skip

    findings = check_repository(repo_copy)

    assert findings == [
        "Dockerfile: the final image runs as root: end with USER <non-root uid>",
        "deploy/compose.yaml: service api runs as root (user: root)",
        "deploy/k8s/overlays/dev: Deployment mlflow, container mlflow may run as root "
        "(runAsNonRoot is not true)",
        "deploy/k8s/overlays/prod: Deployment mlflow, container mlflow may run as root "
        "(runAsNonRoot is not true)",
    ]


def test_the_checker_runs_as_a_command_and_fails_on_findings(repo_copy: Path) -> None:
    edit(repo_copy / "deploy/terraform/variables.tf", '"europe-west3"', '"us-east1"')
    result = subprocess.run(
        [sys.executable, "-m", "tests.deploy.policy", str(repo_copy)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == (
        "deploy/terraform/variables.tf: region 'us-east1' is not in the EU (data residency)\n"
    )
