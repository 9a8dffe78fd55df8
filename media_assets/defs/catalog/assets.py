"""catalog: a DuckDB database with one view per lake table."""

from pathlib import Path

import dagster as dg

from media_assets.defs.episodes import compute
from media_assets.lib.core import catalog as lake_catalog
from media_assets.lib.stages import STAGES
from media_assets.resources import LakeResource


def catalog_path(lake: LakeResource) -> Path:
    """Beside a local lake; in the working directory for an S3 lake."""
    return Path(lake.root) / "catalog.duckdb" if not lake.is_s3 else Path("catalog.duckdb")


@dg.asset(
    deps=[stage.name for stage in STAGES],  # every stage writes tables: its own and quality_checks
    group_name="catalog",
    description="A DuckDB database with one view per table over the current version of every episode.",
    kinds={"duckdb"},
    **compute("cpu-metadata"),
)
def catalog(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    path = catalog_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = lake_catalog.connect(lake.store(), path, lake.filesystem())
    try:
        counts = {
            name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
        }
    finally:
        con.close()
    return dg.MaterializeResult(
        metadata={"database": dg.MetadataValue.path(str(path.resolve())), "row_counts": dg.MetadataValue.json(counts)}
    )
