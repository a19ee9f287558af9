# Cloud SQL for PostgreSQL: MLflow's store, MLflow's basic-auth users, Dagster's storage and the
# monitoring store, one database each. Private IP only (reached from GKE through the VPC),
# encrypted with CMEK, backups and point-in-time recovery on.
resource "google_sql_database_instance" "modelcycle" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses every unencrypted connection; client certificates are not used (private IP, per-database passwords from Secrets)
  name                = "modelcycle-${var.environment}"
  region              = module.eu_region.region
  database_version    = "POSTGRES_18"
  encryption_key_name = google_kms_crypto_key.database.id
  deletion_protection = true

  settings {
    tier              = "db-custom-1-3840"
    edition           = "ENTERPRISE"
    availability_type = var.environment == "prod" ? "REGIONAL" : "ZONAL"
    disk_autoresize   = true
    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.modelcycle.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }
    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      location                       = module.eu_region.region
    }
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
  }
  depends_on = [google_service_networking_connection.private_sql, google_kms_crypto_key_iam_member.sql_agent]
}

resource "google_sql_database" "databases" {
  for_each = toset(["modelcycle", "mlflow", "mlflow_auth", "dagster"])
  name     = each.key
  instance = google_sql_database_instance.modelcycle.name
}
