# The image (Dockerfile) lives in Artifact Registry in the same EU region, encrypted with CMEK;
# CI pushes it, GKE pulls it.
resource "google_artifact_registry_repository" "modelcycle" {
  repository_id = "modelcycle"
  location      = module.eu_region.region
  format        = "DOCKER"
  kms_key_name  = google_kms_crypto_key.registry.id
  docker_config {
    immutable_tags = true
  }
  depends_on = [google_kms_crypto_key_iam_member.registry_agent]
}
