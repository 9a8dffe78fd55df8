"""Runs that die or fail outside every stage still end as dead letters.

- dead_run_sensor: the daemon's side of run liveness (media_assets/run_liveness.py). Every tick
  fails, frees and dead-letters the runs whose process died on this host, so a run killed while
  the daemon runs (or a `media-lake materialize` killed beside it) never holds its pool slots.
- run_failure_dead_letters: a failed run that no stage dead-lettered (its worker was killed, its
  code location was down, it failed to start, run monitoring gave up on it) gets a `run` record
  for its episode, unless Dagster's run retries will re-execute it.
"""

import dagster as dg

from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.lib.core import dead_letters
from media_assets.lib.core.errors import PermanentError
from media_assets.resources import LakeResource
from media_assets.run_liveness import reap_dead_runs, will_retry


class RunFailed(PermanentError):
    """A run failed outside every stage: nothing in the run could dead-letter it."""

    def __init__(self, message: str):
        super().__init__("run_failed", message)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails, frees the pool slots of, and dead-letters runs whose process died (kill -9, OOM, reboot).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance, lake.store(), list(COMPUTE_CLASSES))
    for dead in reaped:
        context.log.warning(dead.describe())
    return dg.SkipReason(f"cleaned up {len(reaped)} dead run(s)" if reaped else "no dead runs")


@dg.run_failure_sensor(
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Dead-letters failed runs that no stage dead-lettered and that run retries will not re-execute.",
)
def run_failure_dead_letters(context: dg.RunFailureSensorContext, lake: LakeResource) -> None:
    run = context.dagster_run
    if will_retry(context.instance, run.run_id):
        context.log.info(f"run {run.run_id} failed and will be retried")
        return
    store = lake.store()
    if any(record["run_id"] == run.run_id for record in dead_letters.list_records(store, open_only=True)):
        return  # a stage or the dead-run reaper recorded it, with more context than the run has
    episode_id = run.tags.get("dagster/partition")
    message = context.failure_event.message or f"run {run.run_id} failed"
    dead_letters.dead_letter(
        store,
        stage=dead_letters.RUN_STAGE,
        subject=episode_id or run.run_id,
        episode_id=episode_id,
        error=RunFailed(message),
        attempts=1 + int(run.tags.get("dagster/retry_number", "0")),
        payload={"episode_id": episode_id, "job": run.job_name, "tags": dict(run.tags)},
        run_id=run.run_id,
    )
    context.log.warning(f"run {run.run_id} of episode {episode_id} failed outside every stage: dead-lettered")
