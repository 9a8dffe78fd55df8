"""Loggers of every job in the code location: structured JSON lines (observability/logs.py)."""

import dagster as dg

from media_assets.observability.logs import LOGGERS


@dg.definitions
def loggers() -> dg.Definitions:
    return dg.Definitions(loggers=LOGGERS)
