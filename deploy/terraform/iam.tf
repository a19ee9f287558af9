# Least privilege through Workload Identity: each Kubernetes service account of deploy/k8s acts as
# one Google service account, with no key file anywhere. modelcycle's pods read and write the two
# buckets (objects only) and connect to Cloud SQL; the daemon's account needs nothing more in Google.
resource "google_service_account" "modelcycle" {
  account_id   = "modelcycle-${var.environment}"
  display_name = "modelcycle pods (${var.environment})"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = toset(["modelcycle", "dagster-daemon"])
  service_account_id = google_service_account.modelcycle.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.namespace}/${each.key}]"
}

resource "google_storage_bucket_iam_member" "objects" {
  for_each = {
    artifacts = google_storage_bucket.artifacts.name
    lake      = google_storage_bucket.lake.name
  }
  bucket = each.value
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.modelcycle.email}"
}

resource "google_project_iam_member" "sql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.modelcycle.email}"
}

# CI pushes images (and nothing else) as this account, through Workload Identity Federation.
resource "google_service_account" "ci" {
  account_id   = "modelcycle-${var.environment}-ci"
  display_name = "modelcycle CI image push (${var.environment})"
}

resource "google_artifact_registry_repository_iam_member" "ci_push" {
  repository = google_artifact_registry_repository.modelcycle.name
  location   = module.eu_region.region
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.ci.email}"
}
