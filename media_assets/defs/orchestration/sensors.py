"""inbox_sensor: new files in the inbox become episodes and runs.

Each tick ingests files that are new or changed since the cursor (bounded per tick), returns
add-partition requests for the registered episodes and one run request per new episode.
Rejected files are dead-lettered by ingest; duplicates start nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from media_assets.defs.episodes import episodes
from media_assets.defs.orchestration.jobs import episode_job
from media_assets.lib.media.ingest import discover, ingest
from media_assets.resources import LakeResource, MediaResource

MAX_FILES_PER_TICK = 20


def inbox_folder() -> Path:
    return Path(os.environ.get("MEDIA_LAKE_INBOX", "inbox")).resolve()


def file_state(path: Path) -> str:
    """Size and modification time: a file whose state changed is looked at again."""
    stat = path.lstat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def pending_files(inbox: Path, seen: dict[str, str], limit: int) -> list[Path]:
    candidates = [path for path, _ in discover([inbox])] if inbox.is_dir() else []
    return [p for p in candidates if seen.get(str(p)) != file_state(p)][:limit]


@dg.sensor(
    job=episode_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Ingests new files from MEDIA_LAKE_INBOX (default ./inbox) and starts a run per new episode.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, media: MediaResource):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    inbox = inbox_folder()
    files = pending_files(inbox, seen, MAX_FILES_PER_TICK)
    if not files:
        return dg.SkipReason(f"no new files in {inbox}")
    registered: list[str] = []
    outcomes = ingest(files, lake.store(), media.settings().limits, registered.extend)
    for path in files:
        seen[str(path)] = file_state(path)
    for outcome in outcomes:
        context.log.info(outcome.to_json())
    new_episodes = sorted({o.episode_id for o in outcomes if o.status == "registered"})
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=e, run_key=e) for e in new_episodes],
        dynamic_partitions_requests=[episodes.build_add_request(registered)] if registered else [],
        cursor=json.dumps(seen, sort_keys=True),
    )
