"""Scale-out on Celery, for real: two workers started as processes against the real RabbitMQ
broker and a PostgreSQL instance, one bound to the GPU queue and one to the CPU queues, share an
S3 lake on loopback. Two episodes run at once with the celery executor. Every step runs on the
worker of its compute class, GPU-class steps never overlap, and the lake ends byte-identical to
an in-process run of the same uploads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import kombu
import pytest

from media_assets.cli import ingest
from media_assets.defs.episodes import COMPUTE_CLASSES
from media_assets.defs.orchestration.executors import CELERY_BROKER
from media_assets.demo import samples
from media_assets.instance import get_instance
from media_assets.lib.stages import STAGES
from media_assets.resources import SETTINGS_RESOURCES, LakeResource
from media_assets_tests.conftest import EPISODE_ASSETS, PG, materialize_episode
from media_assets_tests.services import REPO, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(1200)]

GPU_QUEUE = "gpu-transcription"
CPU_QUEUES = [c for c in COMPUTE_CLASSES if c != GPU_QUEUE]
LAKE_BUCKET, REFERENCE_BUCKET = "celery-lake", "in-process-lake"
BIN = Path(sys.executable).parent
SCRIPTS = [
    "Celery workers take steps from queues. Each queue serves one kind of hardware.",
    "The graphics card transcribes speech while the processors measure loudness and read metadata.",
]


def purge(queues: list[str]) -> None:
    """Drop tasks an interrupted earlier run may have left on the broker's queues."""
    with kombu.Connection(CELERY_BROKER) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                channel.queue_purge(queue)
            except connection.channel_errors:
                pass  # no such queue yet


def start_worker(name: str, queues: list[str], log: Path, *celery_args: str) -> subprocess.Popen:
    """`dagster-celery worker start`, as a user starts it on a GPU or a CPU box. The queues go as
    one comma-separated `-q`: dagster-celery turns repeated `-q` into repeated `-Q`, of which
    Celery 5 keeps only the last."""
    command = ["dagster-celery", "worker", "start", "-A", "media_assets.celery_app", "-n", name, "-q", ",".join(queues)]
    with log.open("a") as out:
        return subprocess.Popen(
            [*command, "--", *celery_args],
            cwd=REPO,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},  # it runs `celery`
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def execute_episode_job(episode_id: str, log: Path) -> subprocess.Popen:
    """A run of episode_job for one episode, orchestrated by a process of its own (as a run worker
    launched by the daemon is), with MEDIA_LAKE_EXECUTOR=celery."""
    with log.open("a") as out:
        return subprocess.Popen(
            [str(BIN / "dagster"), "job", "execute", "-m", "media_assets.definitions"]
            + ["-j", "episode_job", "--tags", json.dumps({"dagster/partition": episode_id})],
            cwd=REPO,
            env={**os.environ, "MEDIA_LAKE_EXECUTOR": "celery"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def bucket_digests(s3, bucket: str) -> dict[str, str]:
    digests = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            digests[item["Key"]] = hashlib.sha256(body).hexdigest()
    return digests


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) from the run's event log."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS})
    starts = {e.step_key: e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.STEP_START}
    ends = {e.step_key: e.timestamp for e in events if e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS}
    return {key: (starts[key], ends[key]) for key in starts}


def workers_of(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """The `worker` each step's materialization recorded, by asset."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return {
        e.dagster_event.asset_key.to_user_string(): e.asset_materialization.metadata["worker"].value for e in events
    }


def test_steps_run_on_the_worker_of_their_compute_class(
    dagster_env, postgres_db, s3, s3_endpoint, tmp_path, monkeypatch
) -> None:
    for bucket in (LAKE_BUCKET, REFERENCE_BUCKET):
        s3.create_bucket(Bucket=bucket)
    env = {
        "DAGSTER_POSTGRES_URL": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{postgres_db}",
        "MEDIA_LAKE_ROOT": f"s3://{LAKE_BUCKET}/lake",
        "MEDIA_LAKE_S3_ENDPOINT_URL": s3_endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    instance = get_instance()
    purge(list(COMPUTE_CLASSES))
    logs = tmp_path / "logs"
    logs.mkdir()
    uploads = [samples.speech(tmp_path / "inputs" / f"episode-{n}.wav", text) for n, text in enumerate(SCRIPTS, 1)]
    outcomes = ingest(uploads, out=io.StringIO())
    episode_ids = [o.episode_id for o in outcomes]
    assert [o.status for o in outcomes] == ["registered", "registered"]

    workers, runs = [], []
    try:
        workers.append(start_worker("gpu", [GPU_QUEUE], logs / "gpu.log", "--concurrency", "1", "--pool", "solo"))
        workers.append(start_worker("cpu", CPU_QUEUES, logs / "cpu.log", "--concurrency", "2"))
        runs += [execute_episode_job(episode_id, logs / f"run-{n}.log") for n, episode_id in enumerate(episode_ids)]
        wait_for(
            lambda: all(run.poll() is not None for run in runs), 600, "the runs", alive=workers, log=logs / "gpu.log"
        )
        records = instance.get_run_records(dg.RunsFilter(job_name="episode_job"))
        assert len(records) == 2
        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}, [
            (log.name, log.read_text()[-3000:]) for log in sorted(logs.iterdir())
        ]
    finally:
        for process in runs:
            if process.poll() is None:  # a run still waiting on a step when the test failed
                process.kill()
                process.wait()
        for worker in workers:
            stop(worker)

    compute_class = {stage.name: stage.compute_class for stage in STAGES}
    gpu_steps = []
    for record in records:
        where = workers_of(instance, record.dagster_run.run_id)
        assert sorted(where) == sorted(EPISODE_ASSETS)
        for asset, worker in where.items():
            expected = "gpu" if compute_class[asset] == GPU_QUEUE else "cpu"
            assert worker["celery_worker"].split("@")[0] == expected, (asset, worker)
            assert worker["queue"] == compute_class[asset], (asset, worker)
        intervals = step_intervals(instance, record.dagster_run.run_id)
        gpu_steps += [intervals[asset] for asset in EPISODE_ASSETS if compute_class[asset] == GPU_QUEUE]
    gpu_steps.sort()
    assert len(gpu_steps) == 4
    assert all(earlier[1] <= later[0] for earlier, later in zip(gpu_steps, gpu_steps[1:])), gpu_steps

    # The same uploads, in this process with the in-process executor, into another lake.
    monkeypatch.setenv("MEDIA_LAKE_ROOT", f"s3://{REFERENCE_BUCKET}/lake")
    ingest(uploads, out=io.StringIO())
    resources = {
        "lake": LakeResource.from_env(),
        **{domain: resource.from_env() for domain, resource in SETTINGS_RESOURCES.items()},
    }
    for episode_id in episode_ids:
        assert materialize_episode(instance, resources, episode_id, EPISODE_ASSETS).success
    assert bucket_digests(s3, LAKE_BUCKET) == bucket_digests(s3, REFERENCE_BUCKET)
