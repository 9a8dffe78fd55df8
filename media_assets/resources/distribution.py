"""How the distribution files are encoded."""

from __future__ import annotations

from pydantic import Field

from media_assets.lib.distribution.settings import DistributionSettings
from media_assets.resources.settings import SettingsResource

DEFAULT = DistributionSettings()


class DistributionResource(SettingsResource):
    mp3_bitrate: str = Field(default=DEFAULT.mp3_bitrate, description="bitrate of the distribution MP3 (CBR)")

    def settings(self) -> DistributionSettings:
        return DistributionSettings(self.mp3_bitrate)
