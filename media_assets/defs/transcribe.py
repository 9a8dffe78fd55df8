"""transcript: speech to text with word timestamps (faster-whisper or whisperx)."""

import dagster as dg

from media_assets.defs.common import RETRY_POLICY, compute, episodes, run_stage
from media_assets.defs.normalize import normalized_audio
from media_assets.lib.speech import stages as speech_stages
from media_assets.resources import LakeResource
from media_assets.resources.speech import SpeechSettings


@dg.asset(
    partitions_def=episodes,
    deps=[normalized_audio],
    code_version=speech_stages.CODE_VERSIONS["transcript"],
    retry_policy=RETRY_POLICY,
    group_name="speech",
    description="Whisper transcription of the normalized audio (VAD on, word timestamps, language detection). "
    "Silence, music and unsupported languages give an empty transcript with a recorded reason.",
    kinds={"json", "whisper"},
    **compute("gpu-transcription"),
)
def transcript(context: dg.AssetExecutionContext, lake: LakeResource, speech: SpeechSettings) -> dg.MaterializeResult:
    return run_stage(context, lake, "transcript",
                     lambda: speech_stages.transcript(lake.store(), context.partition_key, speech.asr()))  # fmt: skip
