"""The catalog asset: DuckDB views over every lake table."""
