"""Benchmark: a batch of 30 mixed uploads through the daemon against the same 30 through
`media-lake run`, on the embedded default (SQLite, a folder inbox, a local lake).

The batch is `samples.mixed_batch`: 12 distinct good episodes, 8 copies, 10 bad uploads.
- **cli**: `media-lake run <folder>` (ingest, then one in-process run per episode, one after the
  other), timed from start to exit.
- **daemon**: `dagster-daemon run` on the repository's workspace (the inbox sensor every
  `--interval` seconds, the run queue at its default of one run per core); the 30 files are copied
  into the inbox at once, without sidecars (so each is taken at its second look), and the clock
  runs from the copy until every good episode has a successful run and no run is queued or in
  flight. Also reported: landing to run requested (the sensor) and to run started (the queue).
Each side starts from a fresh Dagster home and lake; both must account for all 30 inputs.

    .venv/bin/python benchmarks/daemon_batch.py [--interval 30] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def fresh(work: Path, name: str) -> dict[str, str]:
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    (root / "inbox").mkdir(parents=True)
    return {
        **os.environ,
        "DAGSTER_HOME": str(root / "home"),
        "MEDIA_LAKE_ROOT": str(root / "lake"),
        "MEDIA_LAKE_INBOX": str(root / "inbox"),
    }


def place(uploads, inbox: Path) -> None:
    for upload in uploads:
        target = inbox / upload.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(upload.path, target)


def accounted(env: dict[str, str]) -> tuple[int, int, int]:
    """(registered, rejected, duplicate-or-other) read back from the lake."""
    from media_assets.lib.core import dead_letters
    from media_assets.lib.core.lake import LocalStore

    lake = LocalStore(env["MEDIA_LAKE_ROOT"])
    registered = len([k for k in lake.list_keys("registration") if k.endswith(".json")])
    rejected = len([r for r in dead_letters.list_records(lake) if r["stage"] == "ingest"])
    return registered, rejected, 30 - registered - rejected


def run_cli(uploads, work: Path) -> dict:
    env = fresh(work, "cli")
    inbox = Path(env["MEDIA_LAKE_INBOX"])
    place(uploads, inbox)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "media_assets.cli", "run", str(inbox)], env=env, cwd=REPO, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"media-lake run failed: {done.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "accounted": accounted(env)}


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen:
    """`dagster-daemon run` on the repository's workspace, output to `log`, in a session of its own
    (stop it and its code server with os.killpg)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_daemon(uploads, work: Path, interval: int, expected: int) -> dict:
    env = fresh(work, "daemon") | {"MEDIA_LAKE_INBOX_INTERVAL_SECONDS": str(interval)}
    os.environ.update({k: env[k] for k in ("DAGSTER_HOME", "MEDIA_LAKE_ROOT", "MEDIA_LAKE_INBOX")})
    import dagster as dg

    from media_assets.instance import get_instance

    instance = get_instance()
    log = work / "daemon" / "daemon.log"
    daemon = start_daemon(env, log)
    try:
        time.sleep(20)  # the daemon and its code server start (not timed)
        landed = time.time()
        place(uploads, Path(env["MEDIA_LAKE_INBOX"]))
        live = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
        while True:
            records = instance.get_run_records(filters=dg.RunsFilter(job_name="episode_job"))
            done = [r for r in records if r.dagster_run.is_success]
            if len(done) >= expected and not [r for r in records if r.dagster_run.status in live]:
                break
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited: {log.read_text()[-2000:]}")
            time.sleep(1)
        seconds = time.time() - landed
        requested = sorted(r.create_timestamp.timestamp() - landed for r in records)
        started = sorted(r.start_time - landed for r in records)
        return {
            "seconds": round(seconds, 1),
            "accounted": accounted(env),
            "to_requested_s": [
                round(requested[0], 1),
                round(requested[len(requested) // 2], 1),
                round(requested[-1], 1),
            ],
            "to_started_s": [round(started[0], 1), round(started[len(started) // 2], 1), round(started[-1], 1)],
        }
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=int, default=30, help="inbox sensor interval in seconds")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out" / "daemon_batch")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from media_assets.demo import samples

    args.workdir.mkdir(parents=True, exist_ok=True)
    uploads = samples.mixed_batch(args.workdir / "inputs")
    expected = sum(1 for u in uploads if u.fate == "new")
    cli = run_cli(uploads, args.workdir)
    daemon = run_daemon(uploads, args.workdir, args.interval, expected)
    result = {
        "inputs": len(uploads),
        "episodes": expected,
        "cores": os.cpu_count(),
        "interval_s": args.interval,
        "cli": cli,
        "daemon": daemon,
        "daemon_over_cli": round(daemon["seconds"] / cli["seconds"], 2),
    }
    print(json.dumps(result, indent=2))
    (args.workdir / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
