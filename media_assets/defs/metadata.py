"""media_metadata: ID3, container/stream tags, EXIF-style fields and embedded captions."""

import dagster as dg

from media_assets.defs.common import RETRY_POLICY, compute, episodes, run_stage, table_metadata
from media_assets.defs.ingest import raw_media
from media_assets.lib.media import stages as pipeline
from media_assets.resources import LakeResource


@dg.asset(
    partitions_def=episodes,
    deps=[raw_media],
    code_version=pipeline.CODE_VERSIONS["media_metadata"],
    retry_policy=RETRY_POLICY,
    group_name="media",
    metadata=table_metadata("media_metadata", "captions"),
    description="ID3 frames (mutagen), container and stream tags, creation time/device/location, and text "
    "subtitle streams extracted as timed cues. Writes `media_metadata` and `captions`.",
    kinds={"ffmpeg", "parquet"},
    **compute("cpu-metadata"),
)
def media_metadata(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    return run_stage(
        context, lake, "media_metadata", lambda: pipeline.media_metadata_stage(lake.store(), context.partition_key)
    )
