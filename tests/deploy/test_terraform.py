"""deploy/terraform: formatted, and the EU-only rule refuses a region outside the EU for real
(`terraform init` + `plan` of the provider-free modules/eu_region, which needs no download)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, run_tool

TERRAFORM = ROOT / "deploy" / "terraform"


def test_terraform_files_are_formatted() -> None:
    result = run_tool("terraform", "fmt", "-check", "-recursive", "-diff", str(TERRAFORM))
    assert result.returncode == 0, result.stdout + result.stderr


def plan_region(tmp_path: Path, region: str) -> tuple[int, str]:
    module = tmp_path / "eu_region"
    shutil.copytree(TERRAFORM / "modules" / "eu_region", module)
    init = run_tool("terraform", "init", "-input=false", "-no-color", cwd=module)
    assert init.returncode == 0, init.stdout + init.stderr
    plan = run_tool(
        "terraform", "plan", "-input=false", "-no-color", "-var", f"region={region}", cwd=module
    )
    return plan.returncode, " ".join((plan.stdout + plan.stderr).split())


@pytest.mark.parametrize("region", ["us-central1", "europe-west6", "europe-west2"])
def test_a_region_outside_the_eu_is_refused_naming_the_rule(tmp_path: Path, region: str) -> None:
    """us-central1, and also Zurich and London: in Europe, not in the EU."""
    code, output = plan_region(tmp_path, region)

    assert code != 0
    assert f'var.region is "{region}"' in output
    assert "on variables.tf line" in output
    assert "The region must be in the EU so data and models stay there" in output


def test_the_default_eu_region_passes(tmp_path: Path) -> None:
    code, output = plan_region(tmp_path, "europe-west3")

    assert code == 0, output
    assert 'region = "europe-west3"' in output


def test_every_resource_takes_its_region_from_the_eu_rule() -> None:
    """The root module never spells a region: each one comes from module.eu_region."""
    for path in TERRAFORM.glob("*.tf"):
        # the one place var.region is used: handed to the rule
        text = re.sub(r'module "eu_region" \{[^}]*\}', "", path.read_text())
        for line in text.splitlines():
            match = re.match(r"\s*(region|location)\s*=\s*(.+)", line)
            if match:
                assert match.group(2).startswith("module.eu_region."), f"{path.name}: {line}"
    assert 'source = "./modules/eu_region"' in (TERRAFORM / "versions.tf").read_text()


def test_buckets_are_private_encrypted_and_the_artifacts_versioned() -> None:
    storage = (TERRAFORM / "storage.tf").read_text()
    buckets = re.split(r'resource "google_storage_bucket" ', storage)[1:]
    assert len(buckets) == 3
    for bucket in buckets:
        assert 'public_access_prevention    = "enforced"' in bucket
        assert "uniform_bucket_level_access = true" in bucket
        assert "default_kms_key_name = google_kms_crypto_key.storage.id" in bucket
    artifacts = next(b for b in buckets if b.startswith('"artifacts"'))
    assert re.search(r"versioning \{\s*enabled = true", artifacts)
    iam = (TERRAFORM / "iam.tf").read_text()
    assert "google_service_account_key" not in "".join(
        p.read_text() for p in TERRAFORM.glob("*.tf")
    )
    assert "roles/iam.workloadIdentityUser" in iam
