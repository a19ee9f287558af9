# The EU-only rule for every modelcycle resource on Google Cloud, with no provider so that it can be
# checked anywhere (`terraform plan` here needs no download): the root module passes its region
# through this module and places every resource in the region it returns.
variable "region" {
  description = "Google Cloud region for every resource: a region in a member state of the EU."
  type        = string
  default     = "europe-west3"

  validation {
    # Switzerland (europe-west6) and London (europe-west2) are in Europe but not in the EU.
    condition = contains([
      "europe-central2", "europe-north1", "europe-north2", "europe-southwest1", "europe-west1",
      "europe-west3", "europe-west4", "europe-west8", "europe-west9", "europe-west10",
      "europe-west12",
    ], var.region)
    error_message = "The region must be in the EU so data and models stay there (data residency rule, docs/deployment.md): use one of europe-central2, europe-north1, europe-north2, europe-southwest1, europe-west1, europe-west3, europe-west4, europe-west8, europe-west9, europe-west10, europe-west12."
  }
}
