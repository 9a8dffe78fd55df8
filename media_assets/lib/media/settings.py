"""Every knob of the media stages, with its one default. `resources/media.py` exposes each as a
resource field (UI launchpad, `MEDIA_LAKE_*`); each stage fingerprints the part it reads."""

from __future__ import annotations

from dataclasses import dataclass

from media_assets.lib.media.loudness import LoudnessTarget
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.quality import MediaQuality
from media_assets.lib.media.video import VideoSettings


@dataclass(frozen=True)
class MediaSettings:
    limits: MediaLimits = MediaLimits()
    loudness: LoudnessTarget = LoudnessTarget()
    video: VideoSettings = VideoSettings()
    quality: MediaQuality = MediaQuality()  # limits of the quality gates; not part of any fingerprint
