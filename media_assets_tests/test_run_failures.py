"""A run that fails where no stage could record it (a broken code location, a worker gone, a launch
that failed) still becomes a dead letter, once, through the run-failure sensor; the episode's
next successful run resolves it."""

from __future__ import annotations

import dagster as dg

from media_assets.defs.orchestration.run_health import run_failure_dead_letters, run_success_resolves
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


@dg.op
def work():
    pass


@dg.job
def good_job():
    work()


def test_the_record_of_a_failed_run_is_resolved_when_a_later_run_succeeds(dagster_env) -> None:
    """A run retry, a re-run from the UI or the daemon: the episode's next successful run resolves
    the `run` record (it was written even though run retries would re-execute the run)."""
    instance = get_instance()
    run, failure = _failed_run(instance, {"dagster/partition": EPISODE})
    _evaluate(instance, run, failure, dagster_env / "lake")
    lake = LocalStore(dagster_env / "lake")
    (record,) = dead_letters.list_records(lake, open_only=True)

    retry = good_job.execute_in_process(instance=instance, tags={"dagster/partition": EPISODE})
    (success,) = [e for e in retry.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS]
    context = dg.build_run_status_sensor_context(
        sensor_name=run_success_resolves.name,
        dagster_event=success,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(retry.run_id),
    )
    run_success_resolves(context, lake=LakeResource(root=str(lake.root)))
    assert dead_letters.list_records(lake, open_only=True) == []
    assert dead_letters.get_record(lake, record["record_id"])["resolved_at"] is not None
