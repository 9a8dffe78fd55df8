"""chapters, enriched_metadata and distribution: what the episode is about, and the files a
podcast host or player loads."""

import dagster as dg

from media_assets.defs.common import RETRY_POLICY, compute, episodes, run_stage, table_metadata
from media_assets.defs.diarize import diarization
from media_assets.defs.metadata import media_metadata
from media_assets.defs.normalize import normalized_audio
from media_assets.defs.transcribe import transcript
from media_assets.lib.text import stages as enrichment_stages
from media_assets.resources import LakeResource
from media_assets.resources.enrichment import EnrichmentResource


@dg.asset(
    partitions_def=episodes,
    deps=[transcript, diarization, normalized_audio],
    code_version=enrichment_stages.CODE_VERSIONS["chapters"],
    retry_policy=RETRY_POLICY,
    group_name="enrichment",
    metadata=table_metadata("chapters"),
    description="Chapters cut where the topic shifts (sentence embeddings, TextTiling depth), the speech pauses "
    "and who talks changes; titled from key phrases, with the reason for each boundary.",
    kinds={"parquet", "sentence_transformers", "spacy"},
    **compute("cpu-nlp"),
)
def chapters(
    context: dg.AssetExecutionContext, lake: LakeResource, enrichment: EnrichmentResource
) -> dg.MaterializeResult:
    return run_stage(context, lake, "chapters", lambda: enrichment_stages.chapters_stage(
        lake.store(), context.partition_key, enrichment.settings()))  # fmt: skip


@dg.asset(
    partitions_def=episodes,
    deps=[transcript, media_metadata],
    code_version=enrichment_stages.CODE_VERSIONS["enriched_metadata"],
    retry_policy=RETRY_POLICY,
    group_name="enrichment",
    metadata=table_metadata("entities", "keywords", "classifications"),
    description="spaCy entities with when each was first said, ranked keywords and category scores, from the "
    "transcript and embedded captions, merged with the ID3/container tags.",
    kinds={"parquet", "spacy"},
    **compute("cpu-nlp"),
)
def enriched_metadata(
    context: dg.AssetExecutionContext, lake: LakeResource, enrichment: EnrichmentResource
) -> dg.MaterializeResult:
    return run_stage(context, lake, "enriched_metadata", lambda: enrichment_stages.enriched_metadata_stage(
        lake.store(), context.partition_key, enrichment.settings()))  # fmt: skip


@dg.asset(
    partitions_def=episodes,
    deps=[chapters, enriched_metadata, normalized_audio],
    code_version=enrichment_stages.CODE_VERSIONS["distribution"],
    retry_policy=RETRY_POLICY,
    group_name="enrichment",
    description="Podcasting 2.0 chapters JSON, WebVTT chapters and an MP3 with ID3v2 CHAP/CTOC chapter frames and "
    "the episode's tags; each re-read and validated after writing.",
    kinds={"ffmpeg", "json"},
    **compute("cpu-normalization"),
)
def distribution(
    context: dg.AssetExecutionContext, lake: LakeResource, enrichment: EnrichmentResource
) -> dg.MaterializeResult:
    return run_stage(context, lake, "distribution", lambda: enrichment_stages.distribution_stage(
        lake.store(), context.partition_key, enrichment.mp3_bitrate))  # fmt: skip
