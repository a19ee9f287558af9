"""The MLflow tracking server and model registry, behind a few functions with clear errors."""
