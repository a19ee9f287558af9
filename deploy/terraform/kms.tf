# Customer-managed keys (CMEK) for the buckets, Cloud SQL and Artifact Registry, rotated every 90 days.
resource "google_kms_key_ring" "modelcycle" {
  name     = "modelcycle-${var.environment}"
  location = module.eu_region.region
}

resource "google_kms_crypto_key" "storage" {
  name            = "storage"
  key_ring        = google_kms_key_ring.modelcycle.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "database" {
  name            = "database"
  key_ring        = google_kms_key_ring.modelcycle.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

resource "google_kms_crypto_key" "registry" {
  name            = "registry"
  key_ring        = google_kms_key_ring.modelcycle.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

# Google's service agents must be allowed to use the keys on the project's behalf.
data "google_project" "this" {}

data "google_storage_project_service_account" "gcs" {}

resource "google_kms_crypto_key_iam_member" "storage_agent" {
  crypto_key_id = google_kms_crypto_key.storage.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_project_service_identity" "sql" {
  provider = google-beta
  service  = "sqladmin.googleapis.com"
}

resource "google_kms_crypto_key_iam_member" "sql_agent" {
  crypto_key_id = google_kms_crypto_key.database.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${google_project_service_identity.sql.email}"
}

resource "google_kms_crypto_key_iam_member" "registry_agent" {
  crypto_key_id = google_kms_crypto_key.registry.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
}
