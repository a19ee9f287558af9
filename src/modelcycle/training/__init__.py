"""Training: labelled device-windows in, two models out (fault classifier, anomaly detector)."""
