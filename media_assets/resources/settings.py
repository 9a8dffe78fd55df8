"""How episodes are validated and normalized. Every field is part of the stages' fingerprints,
so changing one re-runs exactly the stages it affects."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from media_assets.lib.media.loudness import LoudnessTarget
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.video import VideoSettings


def env_overrides(resource_class: type[dg.ConfigurableResource]) -> dict[str, str]:
    """Field values from `MEDIA_LAKE_<FIELD NAME>` environment variables."""
    return {
        name: os.environ[f"MEDIA_LAKE_{name.upper()}"]
        for name in resource_class.model_fields
        if f"MEDIA_LAKE_{name.upper()}" in os.environ
    }


class MediaSettings(dg.ConfigurableResource):
    target_lufs: float = Field(default=-23.0, description="integrated loudness target (EBU R128: -23; podcasts: -16)")
    true_peak_dbtp: float = Field(default=-1.0, description="true-peak ceiling")
    loudness_range_lu: float = Field(default=7.0, description="loudness range target")
    sample_rate: int = Field(default=48000, description="normalized audio sample rate")
    gop_seconds: float = Field(default=2.0, description="keyframe interval of normalized video")
    video_crf: int = 23
    video_preset: str = "veryfast"
    video_encoder_threads: int = Field(
        default=4, description="x264 threads; fixed, because x264's output depends on its thread count"
    )
    min_seconds: float = Field(default=1.0, description="shortest accepted input")
    max_seconds: float = Field(default=6 * 3600.0, description="longest accepted input")
    max_bytes: int = Field(default=64 * 2**30, description="largest accepted input file")

    @classmethod
    def from_env(cls) -> MediaSettings:
        """Defaults overridden by `MEDIA_LAKE_<FIELD>` variables, e.g. MEDIA_LAKE_TARGET_LUFS=-16."""
        return cls(**env_overrides(cls))

    def loudness_target(self) -> LoudnessTarget:
        return LoudnessTarget(self.target_lufs, self.true_peak_dbtp, self.loudness_range_lu, self.sample_rate)

    def video_settings(self) -> VideoSettings:
        return VideoSettings(
            gop_seconds=self.gop_seconds,
            crf=self.video_crf,
            preset=self.video_preset,
            encoder_threads=self.video_encoder_threads,
        )

    def media_limits(self) -> MediaLimits:
        return MediaLimits(self.min_seconds, self.max_seconds, self.max_bytes)
