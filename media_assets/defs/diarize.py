"""diarization (who spoke when) and speaker_transcript (who said which word, subtitles)."""

import dagster as dg

from media_assets.defs.common import RETRY_POLICY, compute, episodes, run_stage, table_metadata
from media_assets.defs.normalize import normalized_audio
from media_assets.defs.transcribe import transcript
from media_assets.lib.speech import stages as speech_stages
from media_assets.resources import LakeResource
from media_assets.resources.speech import SpeechSettings


class DiarizationConfig(dg.Config):
    num_speakers: int | None = None  # known speaker count for this episode; None: estimate


@dg.asset(
    partitions_def=episodes,
    deps=[normalized_audio],
    code_version=speech_stages.CODE_VERSIONS["diarization"],
    retry_policy=RETRY_POLICY,
    group_name="speech",
    metadata=table_metadata("speaker_turns"),
    description="pyannote.audio speaker diarization: `speaker_turns` with a confidence per turn.",
    kinds={"parquet", "pyannote", "pytorch"},
    **compute("gpu-transcription"),
)
def diarization(
    context: dg.AssetExecutionContext, config: DiarizationConfig, lake: LakeResource, speech: SpeechSettings
) -> dg.MaterializeResult:
    return run_stage(context, lake, "diarization", lambda: speech_stages.diarization_stage(
        lake.store(), context.partition_key, speech.diarization(), config.num_speakers))  # fmt: skip


@dg.asset(
    partitions_def=episodes,
    deps=[transcript, diarization],
    code_version=speech_stages.CODE_VERSIONS["speaker_transcript"],
    retry_policy=RETRY_POLICY,
    group_name="speech",
    metadata=table_metadata("transcript_segments", "transcript_words"),
    description="Each word and segment attributed to the speaker who talks over most of it; "
    "speaker-labelled SRT and WebVTT subtitles.",
    kinds={"parquet"},
    **compute("cpu-metadata"),
)
def speaker_transcript(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    return run_stage(context, lake, "speaker_transcript",
                     lambda: speech_stages.speaker_transcript(lake.store(), context.partition_key))  # fmt: skip
