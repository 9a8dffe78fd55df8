"""Runs whose process died (kill -9, the OOM killer, power loss) must not block later work.

A run that dies without reporting stays STARTED in the Dagster instance and keeps the pool slots
its steps claimed, so every later step of that pool waits forever. Every run therefore carries the
identity of the process that executes it (host, boot id, pid and the pid's start time, so that a
reused pid or a reboot is not mistaken for the old process). `reap_dead_runs` finds STARTED runs
whose process is gone on this host, marks them failed, frees their pool slots and dead-letters
the step that was running. The CLI calls it before it materializes and while a step waits for a
slot; the `dead_run_sensor` calls it in the daemon. Runs owned by another host are left to that
host's reaper (or Dagster run monitoring, where the run launcher supports it).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from media_assets.lib.core.dead_letters import RUN_STAGE, dead_letter
from media_assets.lib.core.errors import PermanentError
from media_assets.lib.core.lake import LakeStore

TAG_HOST = "media-lake/host"
TAG_BOOT = "media-lake/boot-id"
TAG_PID = "media-lake/pid"
TAG_PID_START = "media-lake/pid-start"
TAG_OWNER_RUN = "media-lake/owner-run"  # the run the owner tags were written for (re-executions copy tags)
LIVE_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_RESTARTED,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}


class ProcessDied(PermanentError):
    """The process running a step is gone; nothing is left to retry it (replay the dead letter)."""

    def __init__(self, message: str):
        super().__init__("process_died", message)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str | None:
    """The process's start time (clock ticks since boot); None when it does not run (gone, or a
    zombie nobody has waited for); "" when this cannot be told."""
    if not Path("/proc/self/stat").exists():
        return ""  # no procfs (not Linux): cannot tell
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()  # from field 3 on; the name before ")" may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]


IN_PROCESS_EXECUTORS = {"in_process", "execute_in_process_executor"}  # the second: dg.materialize
MULTIPROCESS_EXECUTORS = {"multiprocess"}


def executor_name(step_context) -> str:
    """The executor running a step's run, with Dagster's default one resolved to its mode."""
    name = step_context.job_def.executor_def.name
    if name == "multi_or_in_process_executor":
        config = step_context.resolved_run_config.execution.execution_engine_config or {}
        return "in_process" if "in_process" in config else "multiprocess"
    return name


def run_worker_pid(executor: str) -> int | None:
    """The pid of the process that orchestrates the run whose step runs here: this process under
    the in-process executor, the run worker that spawned this step process under the multiprocess
    executor. None for executors whose steps run elsewhere (Celery workers, Kubernetes pods)."""
    if executor in IN_PROCESS_EXECUTORS:
        return os.getpid()
    parent = multiprocessing.parent_process()
    return parent.pid if executor in MULTIPROCESS_EXECUTORS and parent is not None else None


def step_worker() -> dict:
    """Where this step runs: host and pid, and under Celery the worker's name and the queue the
    step came from (each step's materialization records it)."""
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    celery = sys.modules.get("celery")  # not imported here for the steps of other executors
    task = celery.current_task if celery else None
    if task and task.request.hostname:  # a proxy: false outside a task
        where["celery_worker"] = task.request.hostname
        routing_key = (task.request.delivery_info or {}).get("routing_key") or ""
        where["queue"] = routing_key.removesuffix(".execute_plan")
    return where


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """Tags naming process `pid` (default: this one) as the owner of a run."""
    pid = os.getpid() if pid is None else pid
    return {
        TAG_HOST: socket.gethostname(),
        TAG_BOOT: _boot_id(),
        TAG_PID: str(pid),
        TAG_PID_START: _start_ticks(pid) or "",
    }


def owner_is_gone(tags: dict[str, str]) -> bool:
    """True only when the owner was on this host and is certainly not running any more."""
    if TAG_PID not in tags or tags.get(TAG_HOST) != socket.gethostname():
        return False
    if tags.get(TAG_BOOT) and tags[TAG_BOOT] != _boot_id():
        return True  # the machine rebooted since
    started = _start_ticks(int(tags[TAG_PID]))
    if started is None:
        return True
    return bool(tags.get(TAG_PID_START)) and bool(started) and started != tags[TAG_PID_START]  # pid reused


def owner_tags_apply(run: dg.DagsterRun) -> bool:
    """Whether the run's owner tags describe this run: written for it, or given at its launch.
    A re-execution (from the UI, or a run retry) copies its parent's tags, owner included."""
    if TAG_PID not in run.tags:
        return False
    return run.tags.get(TAG_OWNER_RUN, run.run_id if run.parent_run_id is None else None) == run.run_id


def tag_run_owner(instance: dg.DagsterInstance, run: dg.DagsterRun, step_context) -> None:
    """Record the orchestrating process on a run launched without it (by the daemon, or
    re-executed), from one of its steps (`step_context`: Dagster's StepExecutionContext)."""
    pid = run_worker_pid(executor_name(step_context))
    if pid is not None and not owner_tags_apply(run):
        instance.add_run_tags(run.run_id, {**owner_tags(pid), TAG_OWNER_RUN: run.run_id})


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    episode_id: str | None
    pid: str
    host: str
    steps: tuple[str, ...]  # the steps that were running when the process died
    pools: tuple[str, ...]  # the pools whose slots it held

    def describe(self) -> str:
        return (
            f"run {self.run_id} (episode {self.episode_id}) was {', '.join(self.steps) or 'starting'} "
            f"but its process {self.pid} on {self.host} is gone (killed, out of memory or power loss): "
            f"marked failed, freed its slots in {', '.join(self.pools) or 'no pool'}, dead-lettered"
        )


def unfinished_steps(instance: dg.DagsterInstance, run_id: str) -> tuple[str, ...]:
    running: dict[str, bool] = {}
    for entry in instance.all_logs(run_id, of_type=_STEP_EVENTS):
        event = entry.dagster_event
        running[event.step_key] = event.event_type in (
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_RESTARTED,
        )
    return tuple(step for step, still in running.items() if still)


def held_slots(instance: dg.DagsterInstance, pools: list[str], run_id: str) -> dict[str, list[str]]:
    """The steps of `run_id` that hold a slot, per pool."""
    storage = instance.event_log_storage
    return {
        pool: [slot.step_key for slot in storage.get_concurrency_info(pool).claimed_slots if slot.run_id == run_id]
        for pool in pools
    }


def reap_dead_runs(instance: dg.DagsterInstance, lake: LakeStore, pools: list[str]) -> list[DeadRun]:
    reaped = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=LIVE_STATUSES)):
        run = record.dagster_run
        if not owner_tags_apply(run) or not owner_is_gone(run.tags):
            continue
        run = instance.get_run_by_id(run.run_id)  # it may have ended meanwhile, or another reaper got it
        if run.status not in LIVE_STATUSES:
            continue
        held = held_slots(instance, pools, run.run_id)
        dead = DeadRun(
            run_id=run.run_id,
            episode_id=run.tags.get("dagster/partition"),
            pid=run.tags[TAG_PID],
            host=run.tags[TAG_HOST],
            steps=unfinished_steps(instance, run.run_id) or tuple(step for steps in held.values() for step in steps),
            pools=tuple(pool for pool, steps in held.items() if steps),
        )
        instance.report_run_failed(run, dead.describe())
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        if dead.episode_id:  # even when run retries will re-execute it: the retried stage resolves it
            for stage in dead.steps or (RUN_STAGE,):
                dead_letter(
                    lake,
                    stage=stage,
                    subject=dead.episode_id,
                    episode_id=dead.episode_id,
                    error=ProcessDied(dead.describe()),
                    attempts=1,
                    payload={"episode_id": dead.episode_id, "asset": stage, "pid": dead.pid, "host": dead.host},
                    run_id=run.run_id,
                )
        reaped.append(dead)
    return reaped
