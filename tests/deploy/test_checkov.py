"""checkov (installed apart from the project's lock by `make tools`) passes on the rendered
Kubernetes overlays, the Dockerfile, the Terraform, the CI workflow, and scans compose and the
env example for secrets; each skipped check says why in the file; and it refuses a root
container and a public bucket with a named check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, run_tool
from tests.deploy.policy import OVERLAYS

pytestmark = pytest.mark.slow  # checkov loads its ~1000 checks on every run


def checkov(target: Path, framework: str) -> tuple[int, str]:
    option = "-d" if target.is_dir() else "-f"
    result = run_tool(
        "checkov", option, str(target), "--framework", framework, "--compact", "--quiet",
        "--skip-download", cwd=target if target.is_dir() else target.parent,
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def rendered(tmp_path: Path, *, replace: tuple[tuple[str, str], ...] = ()) -> Path:
    folder = tmp_path / "rendered"
    folder.mkdir()
    for overlay in OVERLAYS:
        built = run_tool("kubectl", "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay))
        assert built.returncode == 0, built.stderr
        text = built.stdout
        for old, new in replace:
            text = text.replace(old, new)
        (folder / f"{overlay}.yaml").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("target", "framework"),
    [
        ("Dockerfile", "dockerfile"),
        ("deploy/terraform", "terraform"),
        (".github", "github_actions"),
        ("deploy", "secrets"),
    ],
)
def test_checkov_passes(target: str, framework: str) -> None:
    code, output = checkov(ROOT / target, framework)
    assert code == 0, output
    assert "Failed checks: 0" in output or framework == "secrets"


def test_checkov_passes_on_both_kubernetes_overlays(tmp_path: Path) -> None:
    code, output = checkov(rendered(tmp_path), "kubernetes")
    assert code == 0, output
    assert "Failed checks: 0" in output


def test_every_skipped_check_is_justified_where_it_is_skipped() -> None:
    files = [p for p in (ROOT / "deploy").rglob("*") if p.suffix in {".tf", ".yaml"}]
    files += [ROOT / ".github/workflows/ci.yml", ROOT / "Dockerfile"]
    skips = []
    for path in files:
        text = path.read_text()
        skips += re.findall(r"checkov:skip=(CKV\w+)(?::(.*))?", text)
        skips += re.findall(r"checkov\.io/skip\d+: (CKV\w+)(?:=(.*))?", text)
    assert skips
    for check, reason in skips:
        assert len(reason.split()) >= 5, f"{check} is skipped without a reason"


def test_checkov_refuses_a_container_running_as_root(tmp_path: Path) -> None:
    folder = rendered(
        tmp_path,
        replace=(
            ("runAsUser: 10001", "runAsUser: 0"),
            ("runAsNonRoot: true", "runAsNonRoot: false"),
        ),
    )
    code, output = checkov(folder, "kubernetes")
    assert code != 0
    assert 'CKV_K8S_23: "Minimize the admission of root containers"' in output
    assert "File: /dev.yaml" in output


def test_checkov_refuses_a_public_bucket(tmp_path: Path) -> None:
    terraform = tmp_path / "terraform"
    shutil.copytree(ROOT / "deploy/terraform", terraform)
    storage = terraform / "storage.tf"
    storage.write_text(
        storage.read_text()
        + '\nresource "google_storage_bucket_iam_member" "anyone" {\n'
        + "  bucket = google_storage_bucket.lake.name\n"
        + '  role   = "roles/storage.objectViewer"\n  member = "allUsers"\n}\n'
    )
    code, output = checkov(terraform, "terraform")
    assert code != 0
    assert "CKV_GCP_28" in output and "google_storage_bucket_iam_member.anyone" in output
    assert "File: /storage.tf" in output
