"""Pure logic with no Dagster imports: media tools, contracts, lake storage, catalog."""
