# MLflow's artifacts (the model files: versioned, so an overwritten or deleted model can be
# recovered) and the lake (raw logs, Parquet partitions). Both private: uniform bucket-level
# access, public access prevention enforced, CMEK.
resource "google_storage_bucket" "artifacts" {
  name                        = "modelcycle-${var.environment}-artifacts"
  location                    = module.eu_region.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.storage.id
  }
  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }
  depends_on = [google_kms_crypto_key_iam_member.storage_agent]
}

resource "google_storage_bucket" "lake" {
  name                        = "modelcycle-${var.environment}-lake"
  location                    = module.eu_region.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.storage.id
  }
  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }
  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_kms_crypto_key_iam_member.storage_agent]
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:this is the access-log bucket itself; logging it into itself would loop
  name                        = "modelcycle-${var.environment}-access-logs"
  location                    = module.eu_region.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  versioning {
    enabled = true
  }
  encryption {
    default_kms_key_name = google_kms_crypto_key.storage.id
  }
  depends_on = [google_kms_crypto_key_iam_member.storage_agent]
}
