"""episode_job: every stage of one episode; ingest_job: one upload too large to ingest in a tick."""

import dagster as dg

from media_assets.defs.episodes import RETRY_POLICY, episodes
from media_assets.defs.orchestration.executors import chosen_executor
from media_assets.lib.core.dead_letters import dead_letter
from media_assets.lib.core.errors import is_transient
from media_assets.lib.media.ingest import Outcome, ingest
from media_assets.lib.stages import STAGES
from media_assets.resources import InboxResource, LakeResource, MediaResource
from media_assets.run_liveness import tag_run_owner

TAG_INGESTED = "media-lake/ingested-episode"  # set by ingest_job on its run: the episode it registered
TAG_UPLOAD = "media-lake/upload"  # on an ingest_job run: the upload it ingests
TAG_RUN_CLASS = "media-lake/run-class"  # the run queue limits ingest runs by it (instance.py)

episode_job = dg.define_asset_job(
    "episode_job",
    selection=dg.AssetSelection.assets(*(stage.name for stage in STAGES)),
    partitions_def=episodes,
    executor_def=chosen_executor(),
    description="Every stage of an episode, in graph order: "
    + ", ".join(stage.name for stage in STAGES)
    + ". Each stage's quality gates run with it; a failed blocking gate stops the stages after it.",
)


def needs_run(instance: dg.DagsterInstance, outcome: Outcome) -> bool:
    """Whether ingesting this upload should start its episode's run: a new episode, or a duplicate
    of one that never had a run (its first ingest registered it, then the tick or run that did so
    died before the run was requested)."""
    if outcome.status == "registered":
        return True
    return outcome.status == "duplicate" and not instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/partition": outcome.episode_id}), limit=1
    )


class UploadConfig(dg.Config):
    source: str  # a path in the inbox folder, or an s3:// URI in the inbox prefix


@dg.op(retry_policy=RETRY_POLICY)
def ingest_upload(
    context: dg.OpExecutionContext, config: UploadConfig, inbox: InboxResource, lake: LakeResource, media: MediaResource
) -> None:
    """Hash, validate and register one upload (a rejection is dead-lettered by ingest); a new
    episode is tagged on this run, and ingested_upload_sensor starts its episode run. When
    fetching or storing fails for good, the upload is dead-lettered, so `dlq replay` retries it."""
    attempt = context.retry_number + 1
    tag_run_owner(context.instance, context.run, context.get_step_execution_context())
    try:
        with inbox.fetched([config.source]) as (paths, source_of):
            (outcome,) = ingest(
                paths,
                lake.store(),
                media.settings().limits,
                lambda ids: context.instance.add_dynamic_partitions(episodes.name, ids),
                source_of,
            )
    except Exception as exc:
        if is_transient(exc) and attempt <= RETRY_POLICY.max_retries:
            raise
        dead_letter(
            lake.store(),
            stage="ingest",
            subject=config.source,
            path=config.source,
            error=exc,
            attempts=attempt,
            payload={"path": config.source},
            run_id=context.run_id,
        )
        raise dg.Failure(
            f"ingesting {config.source} failed after {attempt} attempt(s): {exc}", allow_retries=False
        ) from exc
    context.log.info(outcome.to_json())
    if needs_run(context.instance, outcome):
        context.instance.add_run_tags(context.run_id, {TAG_INGESTED: outcome.episode_id})


@dg.job(
    description="Ingests one upload too large to hash inside a sensor tick (the inbox sensor starts it).",
    tags={TAG_RUN_CLASS: "ingest"},
)
def ingest_job():
    ingest_upload()
