"""normalized_audio (EBU R128, 48 kHz/16-bit WAV) and normalized_video (H.264/AAC MP4)."""

import dagster as dg

from media_assets.defs.common import RETRY_POLICY, compute, episodes, run_stage, table_metadata
from media_assets.defs.ingest import raw_media
from media_assets.lib.media import stages as pipeline
from media_assets.resources import LakeResource, MediaSettings


@dg.asset(
    partitions_def=episodes,
    deps=[raw_media],
    code_version=pipeline.CODE_VERSIONS["normalized_audio"],
    retry_policy=RETRY_POLICY,
    group_name="media",
    metadata=table_metadata("loudness"),
    description="Two-pass ffmpeg loudnorm in linear mode to the configured EBU R128 target, written as "
    "48 kHz 16-bit PCM WAV; measured input/output loudness and the mode ffmpeg used go to `loudness`.",
    kinds={"ffmpeg", "parquet"},
    **compute("cpu-normalization"),
)
def normalized_audio(
    context: dg.AssetExecutionContext, lake: LakeResource, settings: MediaSettings
) -> dg.MaterializeResult:
    return run_stage(
        context,
        lake,
        "normalized_audio",
        lambda: pipeline.normalized_audio(lake.store(), context.partition_key, settings.loudness_target()),
    )


@dg.asset(
    partitions_def=episodes,
    deps=[raw_media, normalized_audio],
    code_version=pipeline.CODE_VERSIONS["normalized_video"],
    retry_policy=RETRY_POLICY,
    group_name="media",
    metadata=table_metadata("video_renditions"),
    description="H.264 (libx264) MP4 with a closed GOP of fixed length (scene-cut keyframes off), +faststart, "
    "and the normalized audio as AAC. Audio-only episodes succeed with `skipped`.",
    kinds={"ffmpeg", "parquet"},
    **compute("cpu-normalization"),
)
def normalized_video(
    context: dg.AssetExecutionContext, lake: LakeResource, settings: MediaSettings
) -> dg.MaterializeResult:
    return run_stage(
        context,
        lake,
        "normalized_video",
        lambda: pipeline.normalized_video(lake.store(), context.partition_key, settings.video_settings()),
    )
