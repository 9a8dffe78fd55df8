"""Dagster resources: where the lake lives and how media is normalized."""

from media_assets.resources.lake import LakeResource
from media_assets.resources.settings import MediaSettings

__all__ = ["LakeResource", "MediaSettings"]
