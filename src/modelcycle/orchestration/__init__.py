"""The Dagster code location: the daily lifecycle as assets over the CLI's core functions."""
