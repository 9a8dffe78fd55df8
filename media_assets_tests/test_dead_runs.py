"""A process that dies never blocks later work: real `media-lake` processes are killed with
SIGKILL, and the next `materialize` cleans up after them (run failed, pool slots freed, episode
dead-lettered) and proceeds. A step waiting for a slot says which run holds it, and waits asleep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from media_assets import run_liveness
from media_assets.demo import samples
from media_assets.instance import get_instance
from media_assets.lib.core import dead_letters
from media_assets.lib.core.lake import LocalStore

GPU_POOL = "gpu-transcription"
TURNS = [
    ("en-us", 35, "Welcome back to the show. Today we talk about rivers, maps and the weather in the mountains."),
    ("en+f3", 75, "Thanks for having me. I spent the summer walking along the river with a small notebook."),
    ("en-us", 35, "What did you learn from the walk?"),
    ("en+f3", 75, "That every town keeps its own clock, and the trains never wait for anyone."),
]  # about 25 s: diarization runs for seconds, long enough to be killed in


def cli(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "media_assets.cli", *args], text=True, **popen)


def cli_run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "media_assets.cli", *args], text=True, capture_output=True, timeout=timeout
    )


def ingest(*paths: Path) -> list[str]:
    done = cli_run("ingest", *map(str, paths), timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["episode_id"] for line in done.stdout.splitlines()]


def wait_for(condition, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_of(instance: dg.DagsterInstance, episode_id: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"media-lake/episode": episode_id}))
    return runs[0] if runs else None


def step_started(instance: dg.DagsterInstance, episode_id: str, step: str) -> dg.DagsterRun | None:
    run = run_of(instance, episode_id)
    return run if run and step in run_liveness.unfinished_steps(instance, run.run_id) else None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def slot_holders(instance: dg.DagsterInstance) -> set[tuple[str, str]]:
    return {(s.run_id, s.step_key) for s in instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots}


@pytest.mark.slow
def test_kill_during_diarization_then_the_next_materialize_cleans_up_and_completes(dagster_env, media) -> None:
    conversation = dagster_env / "conversation.wav"
    samples.conversation(conversation, TURNS)
    killed_episode, other_episode = ingest(conversation, media["speech"])
    instance = get_instance()

    victim = cli("materialize", "--episode", killed_episode, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dead_run = wait_for(lambda: step_started(instance, killed_episode, "diarization"), 300, "diarization to start")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # The defect: the run stays STARTED and keeps the GPU pool's only slot.
    assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.STARTED
    assert (dead_run.run_id, "diarization") in slot_holders(instance)

    done = cli_run("materialize", "--episode", other_episode, timeout=600)  # the defect: it never ends
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["status"] == "materialized"
    assert f"cleaned up: run {dead_run.run_id} (episode {killed_episode}) was diarization" in done.stderr
    assert f"process {victim.pid}" in done.stderr and "freed its slots in gpu-transcription" in done.stderr

    assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert not {run_id for run_id, _ in slot_holders(instance)} & {dead_run.run_id}
    records = dead_letters.list_records(LocalStore(dagster_env / "lake"))
    (record,) = [r for r in records if r["reason"] == "process_died"]
    assert (record["stage"], record["episode_id"], record["run_id"]) == ("diarization", killed_episode, dead_run.run_id)
    assert record["payload"]["pid"] == str(victim.pid)

    replay = cli_run("dlq", "replay", record["record_id"], timeout=600)  # the lane is free again
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout.splitlines()[0])["status"] == "materialized"


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_only_its_episode(dagster_env, media, monkeypatch) -> None:
    """`materialize` runs episodes side by side in worker processes: one worker killed with SIGKILL
    ends its own episode as a cleaned-up, dead-lettered run; the other episode completes."""
    monkeypatch.setenv("MEDIA_LAKE_MAX_CONCURRENT_RUNS", "2")  # whatever the core count, two at once
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # each worker gets its share of the cores
    conversation = dagster_env / "conversation.wav"
    samples.conversation(conversation, TURNS)
    killed_episode, other_episode = ingest(conversation, media["speech"])
    instance = get_instance()

    batch = cli(
        "materialize", "--episode", killed_episode, "--episode", other_episode,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    dead_run = wait_for(lambda: step_started(instance, killed_episode, "diarization"), 300, "diarization to start")
    worker = int(dead_run.tags[run_liveness.TAG_PID])
    assert worker != batch.pid  # the run is in a worker, not in the CLI's process, with its share of the cores
    threads = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    assert f"OMP_NUM_THREADS={max(1, os.cpu_count() // 2)}".encode() in threads
    os.kill(worker, signal.SIGKILL)
    cut_short = run_liveness.unfinished_steps(instance, dead_run.run_id)  # diarization, or on a fast CPU a later step
    out, err = batch.communicate(timeout=600)

    assert batch.returncode == 0, err  # every episode accounted for: one materialized, one dead-lettered
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["episode_id"] for line in lines] == [killed_episode, other_episode]  # the order asked
    assert (lines[0]["status"], lines[0]["run_id"], lines[0]["dead_lettered"]) == ("failed", dead_run.run_id, True)
    assert lines[1]["status"] == "materialized"
    assert f"{killed_episode}: its worker process died (exit code -9)" in err
    assert (
        f"cleaned up: run {dead_run.run_id} (episode {killed_episode}) was {', '.join(cut_short) or 'starting'}" in err
    )
    assert instance.get_run_by_id(dead_run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert not {run_id for run_id, _ in slot_holders(instance)} & {dead_run.run_id}
    records = dead_letters.list_records(LocalStore(dagster_env / "lake"))
    (record,) = [r for r in records if r["reason"] == "process_died"]
    assert record["episode_id"] == killed_episode and record["stage"] in (cut_short or (dead_letters.RUN_STAGE,))
    assert record["payload"]["pid"] == str(worker)


@pytest.mark.slow
def test_a_waiting_step_names_the_holder_sleeps_and_goes_on_when_the_holder_dies(dagster_env, media) -> None:
    (episode_id,) = ingest(media["speech"])
    prepared = cli_run(
        "materialize", "--episode", episode_id, "--select", "raw_media", "--select", "normalized_audio", timeout=300
    )
    assert prepared.returncode == 0, prepared.stderr
    instance = get_instance()

    holder_process = subprocess.Popen(["sleep", "600"])
    holder = dg.DagsterRun(
        job_name="episode_job",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags=run_liveness.owner_tags(holder_process.pid),
    )
    instance.add_run(holder)
    slots = instance.event_log_storage.get_concurrency_info(GPU_POOL).slot_count
    for step in ["diarization", "transcript"][:slots]:  # every slot of the pool (2 on a CPU-only host)
        assert instance.event_log_storage.claim_concurrency_slot(GPU_POOL, holder.run_id, step).is_claimed

    stderr = dagster_env / "waiting.stderr"
    with open(stderr, "w") as err:
        waiting = cli(
            "materialize", "--episode", episode_id, "--select", "transcript", stdout=subprocess.PIPE, stderr=err
        )
    message = f"transcript waits for a slot in pool {GPU_POOL}, held by run {holder.run_id} (step "
    wait_for(lambda: message in stderr.read_text(), 120, "the waiting message")
    assert f"run {holder.run_id} (step diarization)" in stderr.read_text()  # holders in any order

    before, window = cpu_seconds(waiting.pid), 6.0
    time.sleep(window)
    spent = cpu_seconds(waiting.pid) - before
    assert spent < 0.25 * window, f"the waiting process used {spent:.2f} s of CPU in {window} s"
    assert waiting.poll() is None  # still waiting: the holder is alive

    holder_process.send_signal(signal.SIGKILL)
    holder_process.wait()
    out, _ = waiting.communicate(timeout=180)
    assert waiting.returncode == 0, stderr.read_text()
    assert json.loads(out.splitlines()[0])["status"] == "materialized"
    assert f"cleaned up: run {holder.run_id}" in stderr.read_text()
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.FAILURE


def test_liveness_tells_a_dead_or_reused_pid_from_a_live_one(tmp_path) -> None:
    me = run_liveness.owner_tags(os.getpid())
    assert not run_liveness.owner_is_gone(me)
    assert run_liveness.owner_is_gone({**me, run_liveness.TAG_PID_START: "1"})  # same pid, other process
    assert run_liveness.owner_is_gone({**me, run_liveness.TAG_BOOT: "another-boot"})  # rebooted since
    assert not run_liveness.owner_is_gone({**me, run_liveness.TAG_HOST: "another-host"})  # not ours to judge
    assert not run_liveness.owner_is_gone({})  # untagged runs are left alone

    launched = dg.DagsterRun(job_name="episode_job", run_id=str(uuid.uuid4()), tags=me)
    assert run_liveness.owner_tags_apply(launched)
    rerun = dg.DagsterRun(
        job_name="episode_job",
        run_id=str(uuid.uuid4()),
        tags=me,
        parent_run_id=launched.run_id,
        root_run_id=launched.run_id,
    )
    assert not run_liveness.owner_tags_apply(rerun)  # copied from its parent: not this run's owner
    retagged = {**me, run_liveness.TAG_OWNER_RUN: rerun.run_id}
    assert run_liveness.owner_tags_apply(rerun._replace(tags=retagged))

    child = subprocess.Popen(["sleep", "600"])
    tags = run_liveness.owner_tags(child.pid)
    assert not run_liveness.owner_is_gone(tags)
    child.send_signal(signal.SIGKILL)
    wait_for(lambda: run_liveness.owner_is_gone(tags), 30, "the killed child to count as gone")  # still a zombie
    child.wait()
    assert run_liveness.owner_is_gone(tags)


def test_a_step_outside_a_celery_task_names_its_host_and_pid_even_with_celery_imported() -> None:
    import celery  # imported by any module of the process (a test, a broker client): no task runs

    assert celery.current_task is not None  # a proxy, whatever it wraps
    assert run_liveness.step_worker() == {"host": socket.gethostname(), "pid": os.getpid()}


def test_the_sensor_cleans_up_a_dead_run_in_the_daemon(dagster_env) -> None:
    from media_assets.defs.orchestration.run_health import dead_run_sensor
    from media_assets.resources import LakeResource

    instance = get_instance()
    gone = subprocess.Popen(["true"])
    gone.wait()
    run = dg.DagsterRun(
        job_name="episode_job",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={**run_liveness.owner_tags(gone.pid), "dagster/partition": "0123456789abcdef01234567"},
    )
    instance.add_run(run)
    instance.event_log_storage.claim_concurrency_slot(GPU_POOL, run.run_id, "transcript")
    lake = LakeResource(root=str(dagster_env / "lake"))

    result = dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))
    assert result.skip_message == "cleaned up 1 dead run(s)"
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert not slot_holders(instance)
    (record,) = dead_letters.list_records(lake.store())
    assert (record["stage"], record["reason"]) == ("transcript", "process_died")  # the step that held a slot
    assert record["episode_id"] == "0123456789abcdef01234567"
    assert dead_run_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake})).skip_message == (
        "no dead runs"
    )


@dg.op
def tag_owner(context) -> None:
    run_liveness.tag_run_owner(context.instance, context.run, context.get_step_execution_context())


@dg.job(executor_def=dg.multiprocess_executor)
def multiprocess_job() -> None:
    tag_owner()


@dg.job(executor_def=dg.in_process_executor)
def in_process_job() -> None:
    tag_owner()


@dg.job  # Dagster's default executor: multiprocess unless configured in_process
def default_executor_job() -> None:
    tag_owner()


@pytest.mark.parametrize("job_name", ["multiprocess_job", "in_process_job", "default_executor_job"])
def test_a_run_launched_without_owner_tags_is_tagged_with_its_run_worker(dagster_env, job_name) -> None:
    """Runs the daemon launches (or re-executions) get the orchestrating process, not the process of
    a step: under the multiprocess executor the step runs in a child of the run worker."""
    instance = get_instance()
    with dg.execute_job(dg.reconstructable(globals()[job_name]), instance=instance) as result:
        assert result.success
        tags = instance.get_run_by_id(result.run_id).tags
    assert tags[run_liveness.TAG_PID] == str(os.getpid())  # execute_job orchestrates in this process
    assert tags[run_liveness.TAG_OWNER_RUN] == result.run_id
    assert not run_liveness.owner_is_gone(tags)


def test_speech_steps_share_a_cpu_host_and_take_turns_on_a_gpu(dagster_env) -> None:
    import ctranslate2

    from media_assets.instance import pool_limit

    assert pool_limit(GPU_POOL, cores=16, gpus=1) == 1  # GPU work is serialized
    assert pool_limit(GPU_POOL, cores=2, gpus=0) == 2  # an ASR and a diarization step share the cores
    assert pool_limit(GPU_POOL, cores=16, gpus=0) == 16  # each run with its share of the cores
    assert pool_limit("cpu-nlp", cores=16, gpus=1) == 16 and pool_limit("cpu-nlp", cores=2, gpus=0) == 2
    slots = get_instance().event_log_storage.get_concurrency_info(GPU_POOL).slot_count
    assert slots == pool_limit(GPU_POOL, os.cpu_count(), ctranslate2.get_cuda_device_count())


def test_pool_slots_set_explicitly_win_on_every_host(dagster_env, monkeypatch) -> None:
    from media_assets.instance import POOL_SLOTS_ENV, pool_limit

    chosen = {POOL_SLOTS_ENV: f"{GPU_POOL}=3, cpu-nlp=5"}
    assert pool_limit(GPU_POOL, cores=16, gpus=1, environ=chosen) == 3
    assert pool_limit("cpu-nlp", cores=2, gpus=0, environ=chosen) == 5
    assert pool_limit("cpu-metadata", cores=2, gpus=0, environ=chosen) == 2  # not named: the host's
    for wrong in (f"{GPU_POOL}=0", "gpu=1", f"{GPU_POOL}=two", GPU_POOL):
        with pytest.raises(ValueError, match=POOL_SLOTS_ENV):
            pool_limit(GPU_POOL, cores=2, gpus=0, environ={POOL_SLOTS_ENV: wrong})
    monkeypatch.setenv(POOL_SLOTS_ENV, f"{GPU_POOL}=3")
    assert get_instance().event_log_storage.get_concurrency_info(GPU_POOL).slot_count == 3
