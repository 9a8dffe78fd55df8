"""The lake framework every domain builds on: storage (lake), the stage declaration and runner
(stage), table and JSON contracts, identity, errors, dead letters, quality gates and the DuckDB catalog."""
