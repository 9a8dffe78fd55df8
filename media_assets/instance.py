"""The embedded Dagster instance: SQLite under a project-local DAGSTER_HOME unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

import media_assets.dagster_fixes  # noqa: F401  (applied on import)
from media_assets.defs.episodes import COMPUTE_CLASSES

DEFAULT_HOME = ".dagster_home"
# GPU work is serialized; the CPU pools get as many slots as the machine has cores.
POOL_LIMITS = {"gpu-transcription": 1}

DAGSTER_YAML = """\
# Written by media-lake on first use. SQLite storage under this folder (the embedded default).
# For production, point storage at PostgreSQL (dagster-postgres), e.g.:
# storage:
#   postgres:
#     postgres_url: {env: DAGSTER_POSTGRES_URL}
telemetry:
  enabled: false
concurrency:
  pools:
    granularity: op
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
"""


def dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


def get_instance() -> dg.DagsterInstance:
    dagster_home()
    instance = dg.DagsterInstance.get()
    for pool in COMPUTE_CLASSES:
        limit = POOL_LIMITS.get(pool, os.cpu_count() or 2)
        if instance.event_log_storage.get_concurrency_info(pool).slot_count != limit:
            instance.event_log_storage.set_concurrency_slots(pool, limit)
    return instance
