"""Launchers for the real services the tests talk to: moto S3, PostgreSQL, MLflow, the CLI."""
