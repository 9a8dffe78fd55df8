"""The embedded Dagster instance: SQLite under a project-local DAGSTER_HOME unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

import media_assets.dagster_fixes  # noqa: F401  (applied on import)
from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.defs.orchestration.jobs import TAG_RUN_CLASS

DEFAULT_HOME = ".dagster_home"
POSTGRES_URL_ENV = "DAGSTER_POSTGRES_URL"  # set it before the first use: production mode
SPEECH_POOL = "gpu-transcription"  # ASR and diarization
# Speech steps at once: one on a GPU host (GPU work is serialized); on a CPU-only host one per core,
# like the CPU classes: each run gets its share of the cores (warm_runs.share_cores), and on 2 cores an
# ASR step and a diarization step side by side took 18.4 s where one after the other took 27.1 s
# (benchmarks/README.md). The CPU pools get as many slots as the machine has cores.
# Pool slots live in the instance's storage, shared by every host of a PostgreSQL instance: each
# host that starts sets them for itself. Where hosts differ, set them explicitly, as
# "gpu-transcription=1,cpu-nlp=8": a pool named here keeps that many slots on every host.
POOL_SLOTS_ENV = "MEDIA_LAKE_POOL_SLOTS"
# Run queue: runs at once (each is a process that loads the models it needs), and at most one
# ingest_job run (hashing a multi-GB upload is disk-bound) so episode runs keep flowing beside it.
MAX_CONCURRENT_RUNS_ENV = "MEDIA_LAKE_MAX_CONCURRENT_RUNS"
INGEST_RUNS_AT_ONCE = 1
RUN_RETRIES = 2  # for runs that crash outside a step; a step's own failures are retried by its RetryPolicy

EMBEDDED_STORAGE = """\
# The embedded default: SQLite storage under this folder. For production, set DAGSTER_POSTGRES_URL
# before the first use, or write the storage block yourself (dagster-postgres).
"""
POSTGRES_STORAGE = """\
# Production mode: runs, event logs, schedules, sensor cursors and partitions in PostgreSQL.
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
"""
RUNTIME_CONFIG = """\
telemetry:
  enabled: false
python_logs:
  managed_python_loggers: [media_assets]  # the project's stdlib log lines join the run's log (JSON lines, the UI)
concurrency:
  pools:
    granularity: op  # a step holds its compute class's slot only while it runs
  runs:  # the run queue (QueuedRunCoordinator), drained by the daemon
    max_concurrent_runs: {max_runs}
    tag_concurrency_limits:
      - key: {run_class_tag}
        value: ingest
        limit: {ingest_runs}
run_retries:
  enabled: true
  max_retries: {run_retries}
  retry_on_asset_or_op_failure: false  # op RetryPolicy and run retries must not multiply
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 30
  max_resume_run_attempts: 0  # the default run launcher cannot resume a run; dead_run_sensor fails it
  free_slots_after_run_end_seconds: 30  # a run killed mid-step ends without giving back its pool slots
"""


def dagster_yaml(environ=os.environ) -> str:
    """The instance configuration written on first use: PostgreSQL storage when
    DAGSTER_POSTGRES_URL is set, SQLite otherwise; the same run queue, retries and monitoring."""
    storage = POSTGRES_STORAGE if environ.get(POSTGRES_URL_ENV) else EMBEDDED_STORAGE
    max_runs = int(environ.get(MAX_CONCURRENT_RUNS_ENV) or os.cpu_count() or 2)
    runtime = RUNTIME_CONFIG.format(
        max_runs=max_runs, run_class_tag=TAG_RUN_CLASS, ingest_runs=INGEST_RUNS_AT_ONCE, run_retries=RUN_RETRIES
    )
    return "# Written by media-lake on first use (media_assets/instance.py).\n" + storage + runtime


def dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DEFAULT_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(dagster_yaml())
    return home


def pool_limit(pool: str, cores: int, gpus: int, environ=os.environ) -> int:
    """Slots of a compute class's pool on a host with `cores` cores and `gpus` GPUs, unless
    POOL_SLOTS_ENV names it."""
    chosen = pool_slots(environ.get(POOL_SLOTS_ENV, ""))
    if pool in chosen:
        return chosen[pool]
    return 1 if pool == SPEECH_POOL and gpus else cores


def runs_at_once(instance: dg.DagsterInstance) -> int:
    """The run queue's limit (max_concurrent_runs); the core count where it sets none."""
    queue = instance.get_concurrency_config().run_queue_config
    limit = queue.max_concurrent_runs if queue else -1
    return limit if limit > 0 else os.cpu_count() or 1


def pool_slots(setting: str) -> dict[str, int]:
    """POOL_SLOTS_ENV's "pool=slots,..." as a dict; a clear error for an unknown pool or a count under 1."""
    chosen = {}
    for item in filter(None, (part.strip() for part in setting.split(","))):
        pool, _, count = item.partition("=")
        if pool.strip() not in COMPUTE_CLASSES or not count.strip().isdigit() or int(count) < 1:
            pools = ", ".join(COMPUTE_CLASSES)
            raise ValueError(f"{POOL_SLOTS_ENV}: {item!r} is not pool=slots with slots >= 1 and pool one of {pools}")
        chosen[pool.strip()] = int(count)
    return chosen


def get_instance() -> dg.DagsterInstance:
    """The instance, with each compute class's pool limit set for this host (they live in its storage)."""
    import ctranslate2  # how Whisper finds a GPU (asr.load_engine); no torch import for this

    dagster_home()
    instance = dg.DagsterInstance.get()
    for pool in COMPUTE_CLASSES:
        limit = pool_limit(pool, os.cpu_count() or 2, ctranslate2.get_cuda_device_count())
        if instance.event_log_storage.get_concurrency_info(pool).slot_count != limit:
            instance.event_log_storage.set_concurrency_slots(pool, limit)
    return instance


if __name__ == "__main__":  # `python -m media_assets.instance`: set up DAGSTER_HOME before the daemon starts
    with get_instance() as ready:
        print(f"DAGSTER_HOME={dagster_home()} ({type(ready.run_storage).__name__})")
