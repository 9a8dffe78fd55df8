"""Dagster resources: where the lake lives, and one settings resource per domain (keyed by the
domain name that a stage's `settings` declares)."""

from media_assets.resources.distribution import DistributionResource
from media_assets.resources.lake import LakeResource
from media_assets.resources.media import MediaResource
from media_assets.resources.settings import SettingsResource
from media_assets.resources.speech import SpeechResource
from media_assets.resources.text import TextResource

SETTINGS_RESOURCES: dict[str, type[SettingsResource]] = {
    "media": MediaResource,
    "speech": SpeechResource,
    "text": TextResource,
    "distribution": DistributionResource,
}

__all__ = [
    "SETTINGS_RESOURCES",
    "DistributionResource",
    "LakeResource",
    "MediaResource",
    "SettingsResource",
    "SpeechResource",
    "TextResource",
]
