variable "project_id" {
  description = "Google Cloud project that holds one environment (dev or prod)."
  type        = string
}

variable "environment" {
  description = "dev or prod: names the buckets, the database and the cluster."
  type        = string
  default     = "dev"
  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "EU region for every resource; refused by modules/eu_region when outside the EU."
  type        = string
  default     = "europe-west3"
}

variable "namespace" {
  description = "Kubernetes namespace of the overlay (deploy/k8s/overlays/<env>)."
  type        = string
  default     = "modelcycle-dev"
}

variable "authorized_cidr" {
  description = "The only network allowed to reach the GKE control plane (CI runners, operators)."
  type        = string
  default     = "10.0.0.0/8"
}
