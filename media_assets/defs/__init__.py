"""Dagster declarations, one folder per domain, built from the stage declarations in lib/."""
