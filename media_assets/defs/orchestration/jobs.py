"""episode_job: every stage of one episode, with its quality gates."""

import dagster as dg

from media_assets.defs.episodes import episodes
from media_assets.lib.stages import STAGES

episode_job = dg.define_asset_job(
    "episode_job",
    selection=dg.AssetSelection.assets(*(stage.name for stage in STAGES)),
    partitions_def=episodes,
    description="Every stage of an episode, in graph order: "
    + ", ".join(stage.name for stage in STAGES)
    + ". Each stage's quality gates run with it; a failed blocking gate stops the stages after it.",
)
