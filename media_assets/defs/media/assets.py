"""The media stages as Dagster assets, built from their declarations."""

from media_assets.defs.episodes import stage_assets

assets = stage_assets("media")
