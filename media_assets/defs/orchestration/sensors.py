"""inbox_sensor: complete new uploads in the inbox become episodes and runs, nobody clicking.

Each tick lists the inbox (MEDIA_LAKE_INBOX: a folder, default ./inbox, or an s3:// prefix),
ingests the uploads that are new and complete (lib/media/inbox.py: bounded in files and bytes per
tick), and returns add-partition requests for the registered episodes and one run request per new
episode (or per duplicate of an episode that never had a run: a tick that died after ingesting
leaves no run behind). Uploads too large to hash inside a tick get an ingest_job run each instead, and
ingested_upload_sensor starts the episode run when that ingest registered one. Rejected uploads
are dead-lettered by ingest. On by default: `make dev` processes what
lands in ./inbox.
"""

from __future__ import annotations

import os
import time

import dagster as dg

from media_assets.defs.episodes import episodes
from media_assets.defs.orchestration.jobs import TAG_INGESTED, TAG_UPLOAD, episode_job, ingest_job, needs_run
from media_assets.lib.media.inbox import InboxCursor, plan
from media_assets.lib.media.ingest import ingest
from media_assets.resources import InboxResource, LakeResource, MediaResource

# How often the inbox is listed. An upload without a sidecar must stay unchanged this long to be
# taken, so keep it longer than an uploader may stall (tests shorten it).
INBOX_INTERVAL_SECONDS = int(os.environ.get("MEDIA_LAKE_INBOX_INTERVAL_SECONDS", "30"))
MAX_FILES_PER_TICK = 20
MAX_BYTES_PER_TICK = 2 * 2**30  # hashing and probing take about 4.3 s per GB: well inside the 60 s tick timeout
INGEST_IN_RUN_BYTES = 2**30  # an upload this large is ingested by a run of its own, whatever its size


@dg.sensor(
    jobs=[episode_job, ingest_job],
    minimum_interval_seconds=INBOX_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Ingests complete new uploads from MEDIA_LAKE_INBOX (default ./inbox; a folder or an s3:// prefix) "
    "and starts a run per new episode.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, inbox: InboxResource, lake: LakeResource, media: MediaResource):
    scanned_at_ns = time.time_ns()
    cursor = InboxCursor.from_json(context.cursor)
    todo = plan(
        inbox.candidates(since_ns=cursor.mark_ns),
        cursor,
        MAX_FILES_PER_TICK,
        MAX_BYTES_PER_TICK,
        scanned_at_ns,
        large_bytes=INGEST_IN_RUN_BYTES,
        recent_ns=inbox.recent_ns,
    )
    run_requests = [
        dg.RunRequest(
            job_name=ingest_job.name,
            run_key=f"ingest:{upload.name}:{upload.changed_ns}",
            run_config={"ops": {"ingest_upload": {"config": {"source": inbox.source_name(upload.name)}}}},
            tags={TAG_UPLOAD: inbox.source_name(upload.name)},
        )
        for upload in todo.large
    ]
    registered: list[str] = []
    outcomes = []
    if todo.ready:
        with inbox.fetched([inbox.source_name(c.name) for c in todo.ready]) as (paths, source_of):
            outcomes = ingest(paths, lake.store(), media.settings().limits, registered.extend, source_of)
        for outcome in outcomes:
            context.log.info(outcome.to_json())
        new_episodes = sorted({o.episode_id for o in outcomes if needs_run(context.instance, o)})
        run_requests += [dg.RunRequest(job_name=episode_job.name, partition_key=e, run_key=e) for e in new_episodes]
    if not run_requests:
        handled = f"{len(outcomes)} upload(s) ingested, no new episode" if outcomes else "nothing new and complete"
        return dg.SensorResult(
            skip_reason=f"{handled} in {inbox.describe()} ({todo.waiting} waiting for a second look, "
            f"{todo.deferred} for the next tick)",
            cursor=todo.cursor.to_json(),
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[episodes.build_add_request(registered)] if registered else [],
        cursor=todo.cursor.to_json(),
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[ingest_job],
    request_job=episode_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the episode run of an upload that ingest_job registered.",
)
def ingested_upload_sensor(context: dg.RunStatusSensorContext):
    episode_id = context.instance.get_run_by_id(context.dagster_run.run_id).tags.get(TAG_INGESTED)
    if episode_id is None:
        return dg.SkipReason("the upload was a duplicate or was rejected (dead-lettered)")
    return dg.RunRequest(partition_key=episode_id, run_key=episode_id)
