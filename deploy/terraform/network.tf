# One VPC in the EU region: GKE's nodes and Cloud SQL's private IP, no public database address.
resource "google_compute_network" "modelcycle" {
  name                    = "modelcycle-${var.environment}"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "gke" {
  name                     = "modelcycle-${var.environment}-gke"
  region                   = module.eu_region.region
  network                  = google_compute_network.modelcycle.id
  ip_cidr_range            = "10.10.0.0/20"
  private_ip_google_access = true
  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = "10.20.0.0/16"
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = "10.30.0.0/20"
  }
}

resource "google_compute_global_address" "private_sql" {
  name          = "modelcycle-${var.environment}-sql"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.modelcycle.id
}

resource "google_service_networking_connection" "private_sql" {
  network                 = google_compute_network.modelcycle.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_sql.name]
}

# Nothing from outside reaches the VPC's machines; GKE adds the rules its own control plane needs.
resource "google_compute_firewall" "deny_ingress" {
  name      = "modelcycle-${var.environment}-deny-ingress"
  network   = google_compute_network.modelcycle.id
  direction = "INGRESS"
  priority  = 65534
  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
