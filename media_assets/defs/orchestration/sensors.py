"""inbox_sensor: complete new files in the inbox become episodes and runs, nobody clicking.

Each tick scans MEDIA_LAKE_INBOX (default ./inbox), ingests the files that are new and complete
(lib/media/inbox.py: bounded in files and bytes per tick), and returns add-partition requests for
the registered episodes and one run request per new episode. Rejected files are dead-lettered by
ingest; duplicates start nothing. On by default: `make dev` processes what lands in ./inbox.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg

from media_assets.defs.episodes import episodes
from media_assets.defs.orchestration.jobs import episode_job
from media_assets.lib.media import inbox
from media_assets.lib.media.ingest import ingest
from media_assets.resources import LakeResource, MediaResource

MAX_FILES_PER_TICK = 20
MAX_BYTES_PER_TICK = 2 * 2**30  # hashing and probing stay well inside Dagster's 60 s tick timeout


def inbox_folder() -> Path:
    return Path(os.environ.get("MEDIA_LAKE_INBOX", "inbox")).resolve()


@dg.sensor(
    job=episode_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ingests complete new files from MEDIA_LAKE_INBOX (default ./inbox) and starts a run per new episode.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, media: MediaResource):
    folder = inbox_folder()
    scanned_at_ns = time.time_ns()
    cursor = inbox.InboxCursor.from_json(context.cursor)
    plan = inbox.plan(inbox.scan(folder), cursor, MAX_FILES_PER_TICK, MAX_BYTES_PER_TICK, scanned_at_ns)
    if not plan.ready:
        return dg.SensorResult(
            skip_reason=f"nothing ready in {folder} ({plan.waiting} waiting for a second look)",
            cursor=plan.cursor.to_json(),
        )
    registered: list[str] = []
    outcomes = ingest(plan.ready, lake.store(), media.settings().limits, registered.extend)
    for outcome in outcomes:
        context.log.info(outcome.to_json())
    new_episodes = sorted({o.episode_id for o in outcomes if o.status == "registered"})
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=e, run_key=e) for e in new_episodes],
        dynamic_partitions_requests=[episodes.build_add_request(registered)] if registered else [],
        cursor=plan.cursor.to_json(),
    )
