"""Which speech models run, and where. Part of the speech stages' fingerprints."""

from __future__ import annotations

from pydantic import Field

from media_assets.lib.speech.asr import AsrSettings
from media_assets.lib.speech.diarizer import DiarizationSettings
from media_assets.lib.speech.quality import SpeechQuality
from media_assets.lib.speech.settings import SpeechSettings
from media_assets.resources.settings import SettingsResource

DEFAULT = SpeechSettings()


class SpeechResource(SettingsResource):
    asr_engine: str = Field(default=DEFAULT.asr.engine, description="faster-whisper (CPU/GPU) or whisperx (GPU)")
    asr_model: str = Field(
        default=DEFAULT.asr.model,
        description="tiny.en | base (offline packages) | large-v3 | an org/name hub model (HF_TOKEN) | a local CT2 dir",
    )
    asr_device: str = Field(default=DEFAULT.asr.device, description="auto, cpu or cuda")
    asr_compute_type: str = Field(default=DEFAULT.asr.compute_type, description="auto: int8 on CPU, float16 on GPU")
    asr_language: str | None = Field(default=DEFAULT.asr.language, description="fixed language; unset: detected")
    supported_languages: list[str] = Field(
        default=list(DEFAULT.asr.supported_languages), description="other detected languages: empty transcript"
    )
    asr_beam_size: int = Field(default=DEFAULT.asr.beam_size, description="beam search width")
    asr_batch_size: int = Field(default=DEFAULT.asr.batch_size, description="whisperx batched inference")
    asr_cache_dir: str | None = Field(default=DEFAULT.asr.cache_dir, description="where packaged models are assembled")
    asr_window_seconds: float = Field(default=DEFAULT.asr.window_seconds, description="audio transcribed at a time")
    diarization_pipeline: str = Field(
        default=DEFAULT.diarization.pipeline,
        description="local (offline weights) | pyannote/speaker-diarization-community-1 (HF_TOKEN) | a pipeline dir",
    )
    diarization_device: str = Field(default=DEFAULT.diarization.device, description="auto, cpu, cuda, cuda:1...")
    num_speakers: int | None = Field(
        default=DEFAULT.diarization.num_speakers,
        description="known speaker count (set it in one episode's run config); unset: estimated",
    )
    min_speakers: int | None = Field(default=DEFAULT.diarization.min_speakers, description="lower bound")
    max_speakers: int | None = Field(default=DEFAULT.diarization.max_speakers, description="upper bound")
    diarization_window_seconds: float = Field(
        default=DEFAULT.diarization.window_seconds, description="longer files are diarized in linked windows"
    )
    min_mean_word_probability: float = Field(
        default=DEFAULT.quality.min_mean_word_probability, description="quality gate of the transcript"
    )
    min_mean_turn_confidence: float = Field(
        default=DEFAULT.quality.min_mean_turn_confidence, description="quality gate of the diarization"
    )

    def asr(self) -> AsrSettings:
        return AsrSettings(
            engine=self.asr_engine,
            model=self.asr_model,
            device=self.asr_device,
            compute_type=self.asr_compute_type,
            language=self.asr_language,
            supported_languages=tuple(self.supported_languages),
            beam_size=self.asr_beam_size,
            batch_size=self.asr_batch_size,
            cache_dir=self.asr_cache_dir,
            window_seconds=self.asr_window_seconds,
        )

    def diarization(self) -> DiarizationSettings:
        return DiarizationSettings(
            pipeline=self.diarization_pipeline,
            device=self.diarization_device,
            num_speakers=self.num_speakers,
            min_speakers=self.min_speakers,
            max_speakers=self.max_speakers,
            window_seconds=self.diarization_window_seconds,
        )

    def settings(self) -> SpeechSettings:
        quality = SpeechQuality(self.min_mean_word_probability, self.min_mean_turn_confidence)
        return SpeechSettings(asr=self.asr(), diarization=self.diarization(), quality=quality)
