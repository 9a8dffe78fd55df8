"""The code location: everything under defs/."""

from pathlib import Path

import dagster as dg

import media_assets.dagster_fixes  # noqa: F401  (applied on import)
import media_assets.warm_runs  # noqa: F401  (applied on import: runs forked warm by the code server)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent / "defs")
