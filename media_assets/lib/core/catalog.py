"""DuckDB over the lake: one view per table, reading the current Parquet of every episode.

Works on a local lake folder and on S3 (through an fsspec filesystem registered with DuckDB,
so no DuckDB extension has to be downloaded).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from media_assets.lib.core import tables
from media_assets.lib.core.dead_letters import PREFIX as DLQ_PREFIX
from media_assets.lib.core.lake import LakeStore

DEAD_LETTERS_VIEW = "dead_letters"
SQL_TYPES = {"str": "VARCHAR", "float": "DOUBLE", "int": "BIGINT", "bool": "BOOLEAN"}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(lake: LakeStore, table: str) -> str:
    """A view over the table's current files, or an empty typed table when none exist yet."""
    if not any(k.endswith(".parquet") for k in lake.list_keys(table)):
        return ""
    glob = f"{lake.root_uri}/{table}/*/*.parquet"
    return (
        f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet({_quote(glob)}, "
        "hive_partitioning = false, union_by_name = true)"
    )


def empty_view_sql(table: str) -> str:
    columns = ", ".join(f"CAST(NULL AS {SQL_TYPES[c.dtype]}) AS {c.name}" for c in tables.TABLES[table])
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {columns} WHERE false"


def attach_views(con: duckdb.DuckDBPyConnection, lake: LakeStore, fs=None) -> dict[str, int]:
    """Create every table's view on `con`; return row counts per table."""
    if fs is not None:
        con.register_filesystem(fs)
    counts = {}
    for table in tables.TABLES:
        sql = view_sql(lake, table)
        con.execute(sql or empty_view_sql(table))
        counts[table] = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    dlq_keys = [k for k in lake.list_keys(DLQ_PREFIX) if k.endswith(".json")]
    if dlq_keys:
        glob = f"{lake.root_uri}/{DLQ_PREFIX}/*.json"
        con.execute(
            f"CREATE OR REPLACE VIEW {DEAD_LETTERS_VIEW} AS SELECT * FROM read_json_auto({_quote(glob)}, "
            "union_by_name = true, format = 'auto')"
        )
        counts[DEAD_LETTERS_VIEW] = con.execute(f"SELECT count(*) FROM {DEAD_LETTERS_VIEW}").fetchall()[0][0]
    return counts


def connect(lake: LakeStore, database: Path | str = ":memory:", fs=None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(database))
    attach_views(con, lake, fs)
    return con
