"""How episodes are validated and normalized. Each field is part of the fingerprint of the stages
that read it, so changing one re-runs exactly those stages."""

from __future__ import annotations

from pydantic import Field

from media_assets.lib.media.loudness import LoudnessTarget
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.quality import MediaQuality
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.media.video import VideoSettings
from media_assets.resources.settings import SettingsResource

DEFAULT = MediaSettings()


class MediaResource(SettingsResource):
    target_lufs: float = Field(
        default=DEFAULT.loudness.integrated, description="integrated loudness target (EBU R128: -23; podcasts: -16)"
    )
    true_peak_dbtp: float = Field(default=DEFAULT.loudness.true_peak, description="true-peak ceiling")
    loudness_range_lu: float = Field(default=DEFAULT.loudness.lra, description="loudness range target")
    sample_rate: int = Field(default=DEFAULT.loudness.sample_rate, description="normalized audio sample rate")
    gop_seconds: float = Field(default=DEFAULT.video.gop_seconds, description="keyframe interval of normalized video")
    video_crf: int = Field(default=DEFAULT.video.crf, description="x264 constant rate factor")
    video_preset: str = Field(default=DEFAULT.video.preset, description="x264 preset")
    video_audio_bitrate: str = Field(default=DEFAULT.video.audio_bitrate, description="AAC bitrate in the MP4")
    video_encoder_threads: int = Field(
        default=DEFAULT.video.encoder_threads,
        description="x264 threads; fixed, because x264's output depends on its thread count",
    )
    min_seconds: float = Field(default=DEFAULT.limits.min_seconds, description="shortest accepted input")
    max_seconds: float = Field(default=DEFAULT.limits.max_seconds, description="longest accepted input")
    max_bytes: int = Field(default=DEFAULT.limits.max_bytes, description="largest accepted input file")
    loudness_tolerance_lu: float = Field(
        default=DEFAULT.quality.loudness_tolerance_lu, description="quality gate: allowed distance from the target"
    )
    true_peak_margin_db: float = Field(
        default=DEFAULT.quality.true_peak_margin_db, description="quality gate: allowed excess over the ceiling"
    )
    gop_tolerance_frames: float = Field(
        default=DEFAULT.quality.gop_tolerance_frames, description="quality gate: allowed keyframe drift"
    )

    def settings(self) -> MediaSettings:
        return MediaSettings(
            limits=MediaLimits(self.min_seconds, self.max_seconds, self.max_bytes),
            loudness=LoudnessTarget(self.target_lufs, self.true_peak_dbtp, self.loudness_range_lu, self.sample_rate),
            video=VideoSettings(
                gop_seconds=self.gop_seconds,
                crf=self.video_crf,
                preset=self.video_preset,
                audio_bitrate=self.video_audio_bitrate,
                encoder_threads=self.video_encoder_threads,
            ),
            quality=MediaQuality(self.loudness_tolerance_lu, self.true_peak_margin_db, self.gop_tolerance_frames),
        )
