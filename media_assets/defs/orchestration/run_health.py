"""Runs that die or fail outside every stage still end as dead letters, and are resolved when a
later run of the same episode succeeds.

- dead_run_sensor: the daemon's side of run liveness (media_assets/run_liveness.py). Every tick
  fails, frees and dead-letters the runs whose process died on this host, so a run killed while
  the daemon runs (or a `media-lake materialize` killed beside it) never holds its pool slots.
- run_failure_dead_letters: a failed run that no stage dead-lettered (its worker was killed, its
  code location was down, it failed to start) gets a record: a `run` record for its episode, or
  an `ingest` record for the upload of an ingest_job run. It is written even when run retries
  will re-execute the run (a retry may never launch); the retry's success resolves it.
- run_success_resolves: a successful episode run resolves its episode's `run` record.
"""

import dagster as dg

from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.defs.orchestration.jobs import TAG_UPLOAD, episode_job, ingest_job
from media_assets.lib.core import dead_letters
from media_assets.lib.core.errors import PermanentError
from media_assets.lib.stages import STAGES
from media_assets.resources import LakeResource
from media_assets.run_liveness import reap_dead_runs


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


def _recorded_by_the_run(store, run: dg.DagsterRun, stage: str, subject: str) -> bool:
    """Whether a stage of the run (or the run's own record) already holds its failure."""
    stages = [s.name for s in STAGES] if run.job_name == episode_job.name else []
    for name in [*stages, stage]:
        rid = dead_letters.record_id(name, subject)
        if store.exists(dead_letters.record_key(rid)) and dead_letters.get_record(store, rid)["run_id"] == run.run_id:
            return True
    return False


@dg.run_failure_sensor(
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Dead-letters failed runs that no stage dead-lettered: a `run` record per episode, "
    "an `ingest` record per upload of an ingest_job run.",
)
def run_failure_dead_letters(context: dg.RunFailureSensorContext, lake: LakeResource) -> None:
    run = context.dagster_run
    store = lake.store()
    if run.job_name == ingest_job.name:
        stage, subject, episode_id = "ingest", run.tags.get(TAG_UPLOAD, run.run_id), None
        payload = {"path": subject}
    else:
        episode_id = run.tags.get("dagster/partition")
        stage, subject = dead_letters.RUN_STAGE, episode_id or run.run_id
        payload = {"episode_id": episode_id, "job": run.job_name, "tags": dict(run.tags)}
    if _recorded_by_the_run(store, run, stage, subject):
        return
    dead_letters.dead_letter(
        store,
        stage=stage,
        subject=subject,
        path=subject if stage == "ingest" else None,
        episode_id=episode_id,
        error=RunFailed(context.failure_event.message or f"run {run.run_id} failed"),
        attempts=1 + int(run.tags.get("dagster/retry_number", "0")),
        payload=payload,
        run_id=run.run_id,
    )
    context.log.warning(f"run {run.run_id} ({subject}) failed outside every stage: dead-lettered")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[episode_job],
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Resolves the `run` dead letter of an episode whose run has now succeeded (a retry, a re-run).",
)
def run_success_resolves(context: dg.RunStatusSensorContext, lake: LakeResource) -> None:
    episode_id = context.dagster_run.tags.get("dagster/partition")
    if episode_id and dead_letters.resolve(lake.store(), dead_letters.RUN_STAGE, episode_id):
        context.log.info(
            f"episode {episode_id} succeeded in run {context.dagster_run.run_id}: its run record is resolved"
        )
