"""Benchmark: what one `inbox_sensor` tick costs as the inbox grows, and with one multi-GB upload.

For each inbox size N (default 1,000 and 100,000 files): N hard links to 4 s WAVs (one file per 50,000 links) in a fresh
inbox; then ticks of the real sensor (build_sensor_context, a fresh lake) until every file is
handled, timing the first tick (the first look at N files), the first ingesting tick (20 files
hashed, probed and decoded) and the largest, and recording the cursor's size. Then one WAV of
`--big-gb` GB (48 kHz stereo 16-bit noise): the tick that hands it to an ingest_job run (uploads
of 1 GiB or more are not ingested in a tick), and that run, executed in process. Dagster times a
tick out after 60 s; a run has no such limit.

    .venv/bin/python benchmarks/inbox_tick.py [--sizes 1000 100000] [--big-gb 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINKS_PER_FILE = 50_000
sys.path.insert(0, str(REPO))


def sensor_tick(instance, cursor, lake_root):
    import dagster as dg

    from media_assets.defs.orchestration.sensors import inbox_sensor
    from media_assets.resources import InboxResource, LakeResource, MediaResource

    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "inbox": InboxResource.from_env(),
            "lake": LakeResource(root=str(lake_root)),
            "media": MediaResource(),
        },
    )
    start = time.perf_counter()
    result = inbox_sensor(context)
    return time.perf_counter() - start, result


def run_inbox(work: Path, count: int, source: Path, max_ticks: int) -> dict:
    import dagster as dg

    inbox, lake = work / f"inbox_{count}", work / f"lake_{count}"
    shutil.rmtree(inbox, ignore_errors=True)
    shutil.rmtree(lake, ignore_errors=True)
    inbox.mkdir(parents=True)
    for n in range(count):
        if n % LINKS_PER_FILE == 0:  # a file system allows only so many links to one file
            source = Path(shutil.copy(source, work / f"source_{n}.wav"))
        os.link(source, inbox / f"{n:06}.wav")
    os.environ["MEDIA_LAKE_INBOX"] = str(inbox)
    ticks, cursor = [], None
    with dg.instance_for_test() as instance:
        while len(ticks) < max_ticks:
            seconds, result = sensor_tick(instance, cursor, lake)
            cursor = result.cursor
            ticks.append({"seconds": round(seconds, 3), "cursor_bytes": len(cursor), "runs": len(result.run_requests)})
            if len(ticks) > 2 and not result.run_requests and json.loads(cursor)["waiting"] == {}:
                break
    shutil.rmtree(inbox)
    return {
        "files": count,
        "ticks": len(ticks),
        "first_look_s": ticks[0]["seconds"],
        "first_ingesting_tick_s": ticks[1]["seconds"],
        "max_tick_s": max(t["seconds"] for t in ticks),
        "max_cursor_bytes": max(t["cursor_bytes"] for t in ticks),
        "last_cursor_bytes": ticks[-1]["cursor_bytes"],
    }


def run_big(work: Path, gigabytes: float) -> dict:
    import dagster as dg

    inbox, lake = work / "inbox_big", work / "lake_big"
    shutil.rmtree(lake, ignore_errors=True)
    inbox.mkdir(parents=True, exist_ok=True)
    big = inbox / "big.wav"
    seconds = gigabytes * 2**30 / (48000 * 2 * 2)
    if not big.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"anoisesrc=r=48000:a=0.1:d={seconds:.0f}", "-ac", "2",
             "-c:a", "pcm_s16le", "-y", str(big)],
            check=True,
        )  # fmt: skip
    (inbox / "big.wav.sha256").unlink(missing_ok=True)
    os.environ["MEDIA_LAKE_INBOX"] = str(inbox)
    from media_assets.defs.orchestration.jobs import TAG_INGESTED, ingest_job
    from media_assets.resources import InboxResource, LakeResource, MediaResource

    with dg.instance_for_test() as instance:
        look, result = sensor_tick(instance, None, lake)
        tick_s, result = sensor_tick(instance, result.cursor, lake)
        (request,) = result.run_requests
        assert request.job_name == ingest_job.name, request
        start = time.perf_counter()
        run = ingest_job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            resources={
                "inbox": InboxResource.from_env(),
                "lake": LakeResource(root=str(lake)),
                "media": MediaResource(),
            },
        )
        run_s = time.perf_counter() - start
        registered = TAG_INGESTED in instance.get_run_by_id(run.run_id).tags
    return {
        "bytes": big.stat().st_size,
        "audio_hours": round(seconds / 3600, 2),
        "first_look_s": round(look, 3),
        "tick_requesting_its_ingest_run_s": round(tick_s, 3),
        "ingest_run_s": round(run_s, 2),
        "registered": registered,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--big-gb", type=float, default=3.0)
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "out" / "inbox")
    args = parser.parse_args()
    work = args.workdir.resolve()
    logging.getLogger("dagster").setLevel(logging.WARNING)  # one INFO line per ingested file otherwise
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_HOME", str(work / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    from media_assets.demo import samples

    source = samples.tone(work / "tone.wav", seconds=4.0)
    figures = {"cpus": os.cpu_count(), "inboxes": [], "big": None}
    for count in args.sizes:
        row = run_inbox(work, count, source, max_ticks=8)
        figures["inboxes"].append(row)
        print(json.dumps(row), flush=True)
    if args.big_gb > 0:
        figures["big"] = run_big(work, args.big_gb)
        print(json.dumps(figures["big"]), flush=True)
    (work / "inbox_tick.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
