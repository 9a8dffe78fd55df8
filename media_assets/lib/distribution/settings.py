"""The distribution stage's knobs, with their one default (exposed by `resources/distribution.py`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DistributionSettings:
    mp3_bitrate: str = "128k"  # CBR bitrate of the distribution MP3
