"""A run that fails where no stage could record it (a broken code location, a worker gone, a launch
that failed) still becomes a dead letter, once, through the run-failure sensor; a run that
Dagster's run retries will re-execute does not."""

from __future__ import annotations

import uuid

import dagster as dg

from media_assets.defs.orchestration.run_health import run_failure_dead_letters
from media_assets.instance import get_instance
from media_assets.lib.core import dead_letters
from media_assets.lib.core.lake import LocalStore
from media_assets.resources import LakeResource

EPISODE = "0123456789abcdef01234567"


@dg.op
def lose_the_worker():
    raise RuntimeError("the code server went away")


@dg.job
def broken_job():
    lose_the_worker()


def _failed_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    result = broken_job.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    run = instance.get_run_by_id(result.run_id)
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    return run, failure


def _evaluate(instance, run, failure, lake_root) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=run_failure_dead_letters.name, dagster_event=failure, dagster_instance=instance, dagster_run=run
    ).for_run_failure()
    run_failure_dead_letters(context, lake=LakeResource(root=str(lake_root)))


def test_a_run_failing_outside_every_stage_is_dead_lettered_once(dagster_env) -> None:
    instance = get_instance()
    run, failure = _failed_run(instance, {"dagster/partition": EPISODE})
    lake = LocalStore(dagster_env / "lake")
    for _ in range(2):  # a sensor that sees the failure again records nothing new
        _evaluate(instance, run, failure, lake.root)
    (record,) = dead_letters.list_records(lake)
    assert (record["stage"], record["subject"], record["episode_id"]) == ("run", EPISODE, EPISODE)
    assert (record["reason"], record["run_id"]) == ("run_failed", run.run_id)
    assert record["payload"]["job"] == "broken_job"


def test_a_run_that_will_be_retried_is_left_to_the_retry(dagster_env) -> None:
    """A run that failed outside its steps (here: reported failed, as a code server does when its
    worker vanished) is re-executed by run retries (dagster.yaml), so it is not dead-lettered."""
    instance = get_instance()
    run = dg.DagsterRun(job_name="episode_job", run_id=str(uuid.uuid4()), tags={"dagster/partition": EPISODE})
    instance.add_run(run)
    instance.report_run_failed(run, "the run worker vanished")
    run = instance.get_run_by_id(run.run_id)
    assert run.tags["dagster/will_retry"] == "true"
    (failure,) = [e.dagster_event for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)]
    _evaluate(instance, run, failure, dagster_env / "lake")
    assert dead_letters.list_records(LocalStore(dagster_env / "lake")) == []
