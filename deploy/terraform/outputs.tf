output "region" {
  value = module.eu_region.region
}

output "artifacts_bucket" {
  value = "gs://${google_storage_bucket.artifacts.name}"
}

output "lake_bucket" {
  value = "gs://${google_storage_bucket.lake.name}"
}

output "image_repository" {
  value = "${module.eu_region.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.modelcycle.repository_id}"
}

output "database_private_ip" {
  value = google_sql_database_instance.modelcycle.private_ip_address
}

output "workload_service_account" {
  value = google_service_account.modelcycle.email
}
