# GKE Autopilot: Google runs the nodes; pods pay for what they request (docs/deployment.md argues
# it against Cloud Run). Private nodes, control plane reachable only from authorized_cidr,
# Workload Identity on by default in Autopilot, release channel REGULAR.
resource "google_container_cluster" "modelcycle" {
  #checkov:skip=CKV_GCP_12:Autopilot always runs GKE Dataplane V2, which enforces NetworkPolicies (deploy/k8s); the setting cannot be given
  #checkov:skip=CKV_GCP_61:Autopilot turns intranode visibility on itself; flow logs are on the subnetwork (network.tf)
  #checkov:skip=CKV_GCP_69:Autopilot always runs the GKE metadata server (Workload Identity); the node setting cannot be given
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Workspace domain, which the smallest setup does not assume; RBAC binds service accounts
  name                = "modelcycle-${var.environment}"
  location            = module.eu_region.region
  enable_autopilot    = true
  network             = google_compute_network.modelcycle.id
  subnetwork          = google_compute_subnetwork.gke.id
  deletion_protection = true

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }
  release_channel {
    channel = "REGULAR"
  }
  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }
  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = "172.16.0.0/28"
  }
  master_authorized_networks_config {
    cidr_blocks {
      cidr_block   = var.authorized_cidr
      display_name = "operators and CI"
    }
  }
  database_encryption {
    state    = "ENCRYPTED"
    key_name = google_kms_crypto_key.database.id
  }
  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }
  resource_labels = {
    app         = "modelcycle"
    environment = var.environment
  }
}
