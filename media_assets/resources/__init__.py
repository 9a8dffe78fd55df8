"""Dagster resources: where uploads land, where the lake lives, and one settings resource per domain."""

from media_assets.resources.inbox import InboxResource
from media_assets.resources.lake import LakeResource
from media_assets.resources.settings import (
    SETTINGS_RESOURCES,
    DistributionResource,
    MediaResource,
    SettingsResource,
    SpeechResource,
    TextResource,
)

__all__ = [
    "SETTINGS_RESOURCES",
    "DistributionResource",
    "InboxResource",
    "LakeResource",
    "MediaResource",
    "SettingsResource",
    "SpeechResource",
    "TextResource",
]
