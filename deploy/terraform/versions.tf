# modelcycle on Google Cloud, smallest setup (docs/deployment.md): GKE Autopilot, Cloud SQL for
# PostgreSQL, GCS buckets for MLflow's artifacts and the lake, Artifact Registry for the image,
# everything in one EU region and encrypted with keys modelcycle's project holds (CMEK).
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.20"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = module.eu_region.region
}

provider "google-beta" {
  project = var.project_id
  region  = module.eu_region.region
}

# The EU-only rule (no provider inside, so `terraform plan` of it runs offline in the tests).
module "eu_region" {
  source = "./modules/eu_region"
  region = var.region
}
