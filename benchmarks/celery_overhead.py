"""Benchmark: the celery executor against the in-process executor, on the same two episodes.

Both sides run episode_job once per episode, one run after the other, each run orchestrated by a
process of its own (`dagster job execute`, as the daemon's run worker is), on a PostgreSQL
instance (127.0.0.1:5432) and a fresh local lake each:
- **in_process**: every step in the run's process; each run loads its models again.
- **celery**: steps go to two workers started beforehand (`dagster-celery worker start`, RabbitMQ
  on 127.0.0.1:5672), one on `gpu-transcription` (concurrency 1, solo pool), one on the CPU
  queues (concurrency 1); workers keep their models between steps and runs.

Reported, from the runs' event logs:
- run wall time (RUN_START..RUN_SUCCESS) per episode and in total, and the ratio celery/in-process;
- step time (STEP_START..STEP_SUCCESS) summed per run;
- per-step overhead of Celery: from "Submitting celery task for step X" to X's STEP_START
  (queueing, delivery, the worker loading the run and the plan), and from X's STEP_SUCCESS to
  the next submission that waited for it (result back to the orchestrator), medians over steps;
- worker start: process start to Celery's "ready." (imports, no models yet); models load on a
  worker's first step of each kind, shown as the first and second episode's step times.

    .venv/bin/python benchmarks/celery_overhead.py [--workdir DIR]
Needs RabbitMQ and PostgreSQL on loopback, ffmpeg and espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
WORKERS = [  # name, queues, Celery options
    ("gpu", ["gpu-transcription"], ("--concurrency", "1", "--pool", "solo")),
    ("cpu", ["cpu-normalization", "cpu-metadata", "cpu-nlp"], ("--concurrency", "1")),
]
SCRIPTS = [
    "Celery workers take steps from queues. Each queue serves one kind of hardware, and every step "
    "goes to the queue of its compute class.",
    "The graphics card transcribes speech while the processors measure loudness and read metadata. "
    "Lightweight work never waits behind heavy inference.",
]


def postgres_database() -> str:
    import psycopg2

    name = f"media_lake_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dbname="postgres", host="127.0.0.1", user="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    return name


def drop_database(name: str) -> None:
    import psycopg2

    admin = psycopg2.connect(dbname="postgres", host="127.0.0.1", user="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def side_env(work: Path, side: str, database: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_HOME": str(work / side / "dagster_home"),
        "DAGSTER_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "MEDIA_LAKE_ROOT": str(work / side / "lake"),
        "MEDIA_LAKE_EXECUTOR": side,
        "MEDIA_LAKE_ASR_MODEL": os.environ.get("MEDIA_LAKE_ASR_MODEL", "tiny.en"),
        "HF_HUB_OFFLINE": "1",
        "PYANNOTE_METRICS_ENABLED": "0",
        "OMP_WAIT_POLICY": "PASSIVE",
    }


def ingest(env: dict[str, str], uploads: list[Path]) -> list[str]:
    out = subprocess.run(
        [str(BIN / "media-lake"), "ingest", *map(str, uploads)], env=env, capture_output=True, text=True, check=True
    ).stdout
    return [json.loads(line)["episode_id"] for line in out.splitlines()]


def run_episode(env: dict[str, str], episode_id: str, log: Path) -> None:
    with log.open("a") as out:
        subprocess.run(
            [str(BIN / "dagster"), "job", "execute", "-m", "media_assets.definitions", "-j", "episode_job"]
            + ["--tags", json.dumps({"dagster/partition": episode_id})],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )


def start_worker(env, name: str, queues: list[str], log: Path, *args: str) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    with log.open("a") as out:
        worker = subprocess.Popen(
            [str(BIN / "dagster-celery"), "worker", "start", "-A", "media_assets.celery_app", "-n", name]
            + ["-q", ",".join(queues), "--", *args],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    while "ready." not in log.read_text():
        if worker.poll() is not None or time.monotonic() - started > 300:
            os.killpg(worker.pid, 9)
            raise SystemExit(f"worker {name} not ready: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    return worker, time.monotonic() - started


def run_figures(env: dict[str, str]) -> list[dict]:
    """Per run (oldest first): wall time, step times, Celery submit->start and end->next-submit gaps."""
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "DAGSTER_POSTGRES_URL")})
    import dagster as dg

    figures = []
    with dg.DagsterInstance.get() as instance:
        records = sorted(
            instance.get_run_records(dg.RunsFilter(job_name="episode_job")), key=lambda r: r.create_timestamp
        )
        for record in records:
            assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS, record.dagster_run.run_id
            events = [
                (e.dagster_event.event_type, e) for e in instance.all_logs(record.dagster_run.run_id) if e.dagster_event
            ]
            first = {}
            for kind, e in events:
                first.setdefault((kind, e.step_key), e.timestamp)
            submitted = {
                e.step_key: e.timestamp
                for kind, e in events
                if kind == dg.DagsterEventType.ENGINE_EVENT and "Submitting celery task" in (e.message or "")
            }
            start = {k: t for (kind, k), t in first.items() if kind == dg.DagsterEventType.STEP_START}
            end = {k: t for (kind, k), t in first.items() if kind == dg.DagsterEventType.STEP_SUCCESS}
            run_start = first[(dg.DagsterEventType.RUN_START, None)]
            run_end = first[(dg.DagsterEventType.RUN_SUCCESS, None)]
            figures.append(
                {
                    "run_s": run_end - run_start,
                    "steps_s": {k: end[k] - start[k] for k in start},
                    "submit_to_start_s": [start[k] - submitted[k] for k in submitted],
                    # a submission waits for the step before it; the gap after the latest step end
                    "end_to_next_submit_s": [
                        t - max(e for e in end.values() if e <= t)
                        for t in submitted.values()
                        if any(e <= t for e in end.values())
                    ],
                }
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out" / "celery")
    args = parser.parse_args()
    from media_assets.demo import samples

    work = args.workdir.resolve()
    uploads = [samples.speech(work / "inputs" / f"episode-{n}.wav", text) for n, text in enumerate(SCRIPTS, 1)]
    results = {}
    for side in ("in_process", "celery"):
        shutil.rmtree(work / side, ignore_errors=True)  # a fresh lake: nothing skipped as unchanged
        database = postgres_database()
        try:
            env = side_env(work, side, database)
            logs = work / side / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            episode_ids = ingest(env, uploads)
            workers, worker_start = [], {}
            try:
                for name, queues, extra in WORKERS if side == "celery" else ():
                    worker, seconds = start_worker(env, name, queues, logs / f"{name}.log", *extra)
                    workers.append(worker)
                    worker_start[name] = seconds
                started = time.monotonic()
                for n, episode_id in enumerate(episode_ids):
                    run_episode(env, episode_id, logs / f"run-{n}.log")
                wall = time.monotonic() - started
            finally:
                for worker in workers:
                    os.killpg(worker.pid, 15)
                    worker.wait(timeout=120)
            results[side] = {"wall_s": wall, "worker_start_s": worker_start, "runs": run_figures(env)}
        finally:
            drop_database(database)

    print(f"{'':24}{'in_process':>12}{'celery':>12}{'ratio':>8}")
    for n in range(len(SCRIPTS)):
        a, b = (results[s]["runs"][n]["run_s"] for s in ("in_process", "celery"))
        print(f"{f'run {n + 1} (RUN_START..END)':24}{a:12.1f}{b:12.1f}{b / a:8.2f}")
    a, b = (results[s]["wall_s"] for s in ("in_process", "celery"))
    print(f"{'both runs, wall (s)':24}{a:12.1f}{b:12.1f}{b / a:8.2f}")
    for n in range(len(SCRIPTS)):
        for side in ("in_process", "celery"):
            steps = results[side]["runs"][n]["steps_s"]
            print(f"run {n + 1} {side:10} steps: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))
    celery_runs = results["celery"]["runs"]
    submit = [g for r in celery_runs for g in r["submit_to_start_s"]]
    back = [g for r in celery_runs for g in r["end_to_next_submit_s"]]
    print(f"celery worker start to ready (s): {results['celery']['worker_start_s']}")
    print(
        f"celery per step: submit -> STEP_START median {statistics.median(submit):.2f} s "
        f"(min {min(submit):.2f}, max {max(submit):.2f}); STEP_SUCCESS -> next submit median "
        f"{statistics.median(back):.2f} s (min {min(back):.2f}, max {max(back):.2f}); "
        f"{len(submit)} steps"
    )
    (work / "celery_overhead.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
