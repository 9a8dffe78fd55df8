"""The speech stages as Dagster assets, with their quality gates as asset checks."""
