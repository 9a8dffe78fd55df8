"""Every per-episode stage, in graph order: the one list the Dagster assets, `episode_job`, the
catalog's deps and the README's asset table are built from. A new stage is one module with a
`STAGE` declaration, one JSON Schema, its tests, and one line here."""

from __future__ import annotations

from media_assets.lib.core.stage import Stage
from media_assets.lib.distribution import distribution
from media_assets.lib.media import media_metadata, normalized_audio, normalized_video, raw_media
from media_assets.lib.speech import diarization, speaker_transcript, transcript
from media_assets.lib.text import chapters, enriched_metadata

STAGES: tuple[Stage, ...] = (
    raw_media.STAGE,
    normalized_audio.STAGE,
    normalized_video.STAGE,
    media_metadata.STAGE,
    transcript.STAGE,
    diarization.STAGE,
    speaker_transcript.STAGE,
    chapters.STAGE,
    enriched_metadata.STAGE,
    distribution.STAGE,
)
BY_NAME = {stage.name: stage for stage in STAGES}
DOMAINS = tuple(dict.fromkeys(stage.domain for stage in STAGES))


def table_writers() -> tuple[str, ...]:
    return tuple(stage.name for stage in STAGES if stage.tables)
