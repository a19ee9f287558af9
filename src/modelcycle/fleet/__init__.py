"""A customer's fleet: their devices with a status from the latest scores, and a device's story."""
