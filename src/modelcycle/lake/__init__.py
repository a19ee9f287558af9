"""The Parquet lake: validated, typed readings per day, with a quarantine for what failed."""
