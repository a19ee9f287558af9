output "region" {
  description = "The validated EU region."
  value       = var.region
}

output "location" {
  description = "Location for regional resources (buckets, key rings, registries): the region in upper case."
  value       = upper(var.region)
}
