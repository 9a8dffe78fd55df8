"""Benchmark: how long a scrape of `media-lake metrics serve` takes on a large history (issue 15:
well under a 10 s scrape timeout with 1,000 runs and 10,000 dead letters).

A fresh instance (the embedded SQLite one, or PostgreSQL with --postgres URL, a database this
script creates and drops) gets --runs finished episode runs written through Dagster's own event
API: each a run record, RUN_START, one materialization per stage carrying the metadata the stages
write (seconds, audio seconds, the word and turn confidence buckets) and RUN_SUCCESS (one run in
ten fails, with a step failure; no quality gate results are written). A fresh local lake gets
--dead-letters dead-letter records (no registrations or duplicates). Then the collector is
scraped in this process, as the HTTP handler scrapes it: the first scrape (the whole history:
what a restarted exporter pays), a second with nothing new, and one after --runs / 100 more runs.

    .venv/bin/python benchmarks/metrics_scrape.py [--runs 1000] [--dead-letters 10000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_runs(instance, count: int, audio_seconds: float = 600.0) -> None:
    import dagster as dg
    from dagster._core.events import DagsterEvent, StepMaterializationData
    from dagster._core.execution.plan.objects import StepFailureData, UserFailureData
    from dagster._core.test_utils import create_run_for_test

    from media_assets.lib.metrics import bucketed
    from media_assets.lib.stages import STAGES

    for n in range(count):
        episode = f"episode-{uuid.uuid4().hex[:12]}"
        run = create_run_for_test(instance, job_name="episode_job", tags={"dagster/partition": episode})
        instance.report_dagster_event(DagsterEvent("PIPELINE_START", "episode_job"), run.run_id)
        failing = n % 10 == 9
        for stage in STAGES[: 4 if failing else None]:
            metadata = {
                "skipped_unchanged": False,
                "stage_seconds": 1.5,
                "audio_seconds": audio_seconds,
                "word_probability_buckets": bucketed([0.9] * 50 + [0.4] * 5),
                "turn_confidence_buckets": bucketed([0.8] * 20),
            }
            materialization = dg.AssetMaterialization(stage.name, partition=episode, metadata=metadata)
            event = DagsterEvent(
                "ASSET_MATERIALIZATION", "episode_job", step_key=stage.name,
                event_specific_data=StepMaterializationData(materialization),
            )  # fmt: skip
            instance.report_dagster_event(event, run.run_id)
        if failing:
            failure = StepFailureData(
                error=None,
                user_failure_data=UserFailureData(
                    label="intentional-failure",
                    metadata={
                        "reason": dg.MetadataValue.text("exhausted_retries"),
                        "failure_class": dg.MetadataValue.text("permanent"),
                        "error_type": dg.MetadataValue.text("ConnectionError"),
                    },
                ),
            )
            step_failure = DagsterEvent(
                "STEP_FAILURE", "episode_job", step_key="transcript", event_specific_data=failure
            )
            instance.report_dagster_event(step_failure, run.run_id)
        instance.report_dagster_event(
            DagsterEvent("PIPELINE_FAILURE" if failing else "PIPELINE_SUCCESS", "episode_job"), run.run_id
        )


def write_dead_letters(lake, count: int) -> None:
    from media_assets.lib.core.dead_letters import dead_letter
    from media_assets.lib.core.errors import RejectedMedia

    for n in range(count):
        dead_letter(
            lake, stage="ingest", subject=f"s3://uploads/incoming/bad-{n}.mp3", path=f"bad-{n}.mp3",
            error=RejectedMedia("undecodable", "no audio stream decodes"), attempts=1, payload={"path": f"bad-{n}"},
        )  # fmt: skip


def scrape(collector) -> tuple[float, int]:
    start = time.perf_counter()
    families = list(collector.collect())
    return time.perf_counter() - start, sum(len(f.samples) for f in families)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--dead-letters", type=int, default=10000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="metrics-scrape-"))
    os.environ["DAGSTER_HOME"] = str(work / "home")
    database = None
    if args.postgres:
        import psycopg2

        database = f"scrape_{uuid.uuid4().hex[:8]}"
        admin = psycopg2.connect(f"{args.postgres}/postgres")
        admin.autocommit = True
        admin.cursor().execute(f"CREATE DATABASE {database}")
        os.environ["DAGSTER_POSTGRES_URL"] = f"{args.postgres}/{database}"

    import dagster as dg

    from media_assets.instance import dagster_home
    from media_assets.lib.core.lake import LocalStore
    from media_assets.observability.exporter import PipelineCollector

    dagster_home()
    lake = LocalStore(work / "lake")
    with dg.DagsterInstance.get() as instance:
        storage = type(instance.event_log_storage).__name__
        start = time.perf_counter()
        write_runs(instance, args.runs)
        write_dead_letters(lake, args.dead_letters)
        print(
            f"{storage}: wrote {args.runs} runs and {args.dead_letters} dead letters "
            f"in {time.perf_counter() - start:.0f} s"
        )
        collector = PipelineCollector(instance, lake)
        first, samples = scrape(collector)
        second, _ = scrape(collector)
        write_runs(instance, max(1, args.runs // 100))
        third, _ = scrape(collector)
        tally, total_runs = collector.feed.tally, args.runs + max(1, args.runs // 100)
        assert sum(tally.runs_ended.values()) == total_runs, tally.runs_ended  # every run counted, once
        assert sum(tally.step_failures.values()) == sum(1 for n in range(args.runs) if n % 10 == 9) + (
            sum(1 for n in range(max(1, args.runs // 100)) if n % 10 == 9)
        )
        print(f"first scrape (the whole history): {first:.2f} s, {samples} samples")
        print(f"second scrape (nothing new): {second:.2f} s")
        print(f"after {max(1, args.runs // 100)} more runs: {third:.2f} s")
    if database:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
