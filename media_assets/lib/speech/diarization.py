"""The diarization stage: `diarization` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.speech import diarizer
from media_assets.lib.speech.quality import SPEAKER_CONFIDENCE
from media_assets.lib.speech.settings import SpeechSettings


@stage(
    upstream=("normalized_audio",),
    code_version="3",  # 2: read through speech/audio.py (shared windows); 3: 4 s window step
    compute_class="gpu-transcription",
    kinds=("parquet", "pyannote", "pytorch"),
    tables=("speaker_turns",),
    checks=(SPEAKER_CONFIDENCE,),
)
def diarization(lake: LakeStore, episode_id: str, settings: SpeechSettings) -> StageResult:
    """pyannote.audio speaker diarization: `speaker_turns` with a confidence per turn. A known speaker count
    for an episode is the speech resource's `num_speakers`, set in that run's config."""
    run = StageRun(lake, diarization, episode_id, dataclasses.asdict(settings.diarization))
    if done := run.up_to_date():
        return done
    with lake.local_copy(run.upstream["normalized_audio"]["outputs"]["audio"]["key"]) as wav:
        result = diarizer.diarize(wav, settings.diarization)
    turns = [
        {"speaker_id": t.speaker_id, "start_time": t.start, "end_time": t.end, "confidence_score": t.confidence}
        for t in result.turns
    ]
    run.put_table("speaker_turns", [{"episode_id": episode_id, "turn_index": n, **t} for n, t in enumerate(turns)])
    return run.finish(
        {
            "pipeline": result.pipeline,
            "confidence_method": result.confidence_method,
            "speaker_count": result.speaker_count,
            "engine_metadata": result.metadata,
            "turns": turns,
        }
    )
