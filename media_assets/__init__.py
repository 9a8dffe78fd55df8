"""media-lake: a Dagster code location that turns raw episodes into a queryable media lake."""
