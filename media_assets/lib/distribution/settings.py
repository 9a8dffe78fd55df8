"""The distribution stage's knobs, with their one default (exposed by `resources/distribution.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from media_assets.lib.core.settings import knob


@dataclass(frozen=True)
class DistributionSettings:
    mp3_bitrate: str = knob("128k", "mp3_bitrate", "bitrate of the distribution MP3 (CBR)")
