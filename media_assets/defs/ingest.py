"""raw_media: the validated original bytes of each episode."""

import dagster as dg

from media_assets.defs.common import RETRY_POLICY, compute, episodes, run_stage, table_metadata
from media_assets.lib.media import stages as pipeline
from media_assets.resources import LakeResource, MediaSettings


@dg.asset(
    partitions_def=episodes,
    code_version=pipeline.CODE_VERSIONS["raw_media"],
    retry_policy=RETRY_POLICY,
    group_name="media",
    metadata=table_metadata("episodes"),
    description="Original bytes re-verified against their SHA-256, probed with ffprobe and held to the "
    "media contract (decodable audio, known container, duration bounds). Writes `episodes` and the probe JSON.",
    kinds={"ffmpeg", "parquet"},
    **compute("cpu-metadata"),
)
def raw_media(context: dg.AssetExecutionContext, lake: LakeResource, settings: MediaSettings) -> dg.MaterializeResult:
    return run_stage(
        context,
        lake,
        "raw_media",
        lambda: pipeline.raw_media(lake.store(), context.partition_key, settings.media_limits()),
    )
