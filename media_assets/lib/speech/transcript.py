"""The transcript stage: `transcript` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.speech import asr
from media_assets.lib.speech.quality import WORD_CONFIDENCE
from media_assets.lib.speech.settings import SpeechSettings


@stage(
    upstream=("normalized_audio",),
    code_version="3",  # 2: read through speech/audio.py (shared windows); 3: batched decoding
    compute_class="gpu-transcription",
    kinds=("json", "whisper"),
    checks=(WORD_CONFIDENCE,),
)
def transcript(lake: LakeStore, episode_id: str, settings: SpeechSettings) -> StageResult:
    """Whisper (faster-whisper on CPU, whisperx on GPU; VAD on, batched, language detection): sentences and words with
    times and probabilities in the transcript JSON. Silence, music and unsupported languages give an
    empty transcript with a reason."""
    run = StageRun(lake, transcript, episode_id, dataclasses.asdict(settings.asr))
    if done := run.up_to_date():
        return done
    engine = asr.load_engine(settings.asr)
    with lake.local_copy(run.upstream["normalized_audio"]["outputs"]["audio"]["key"]) as wav:
        result = engine.transcribe(wav)
    return run.finish(
        {
            "engine": result.engine,
            "model": result.model,
            "language": result.language,
            "language_probability": result.language_probability,
            "empty_reason": result.empty_reason,
            "engine_metadata": result.metadata,
            "segments": [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                    "words": [
                        {"start": w.start, "end": w.end, "text": w.text, "probability": w.probability} for w in s.words
                    ],
                }
                for s in result.segments
            ],
        }
    )
