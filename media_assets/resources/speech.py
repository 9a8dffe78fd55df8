"""Which speech models run, and where. Part of the speech stages' fingerprints."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from media_assets.lib.speech.asr import AsrSettings
from media_assets.lib.speech.diarizer import DiarizationSettings
from media_assets.resources.settings import env_overrides


class SpeechSettings(dg.ConfigurableResource):
    asr_engine: str = Field(default="faster-whisper", description="faster-whisper (CPU/GPU) or whisperx (GPU path)")
    asr_model: str = Field(
        default="base",
        description="tiny.en | base (offline packages) | large-v3 | an org/name hub model (HF_TOKEN) | a local CT2 dir",
    )
    asr_device: str = Field(default="auto", description="auto, cpu or cuda")
    supported_languages: list[str] = Field(default=["en"], description="other detected languages: empty transcript")
    diarization_pipeline: str = Field(
        default="local",
        description="local (offline weights) | pyannote/speaker-diarization-community-1 (HF_TOKEN) | a pipeline dir",
    )
    min_speakers: int | None = None
    max_speakers: int | None = None

    @classmethod
    def from_env(cls) -> SpeechSettings:
        """Defaults overridden by `MEDIA_LAKE_<FIELD>` variables, e.g. MEDIA_LAKE_ASR_MODEL=tiny.en;
        MEDIA_LAKE_SUPPORTED_LANGUAGES is comma-separated."""
        overrides: dict = env_overrides(cls)
        if "supported_languages" in overrides:
            overrides["supported_languages"] = [code.strip() for code in overrides["supported_languages"].split(",")]
        return cls(**overrides)

    def asr(self) -> AsrSettings:
        return AsrSettings(engine=self.asr_engine, model=self.asr_model, device=self.asr_device,
                           supported_languages=tuple(self.supported_languages))  # fmt: skip

    def diarization(self) -> DiarizationSettings:
        return DiarizationSettings(pipeline=self.diarization_pipeline, device=self.asr_device,
                                   min_speakers=self.min_speakers, max_speakers=self.max_speakers)  # fmt: skip
