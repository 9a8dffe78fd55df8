"""Every per-episode stage, in graph order: the one list the Dagster assets, `episode_job`, the
catalog's deps and the README's asset table are built from. A new stage is one module with an
`@stage` function, one JSON Schema, its tests, and one line here."""

from __future__ import annotations

from media_assets.lib.core.stage import Stage
from media_assets.lib.distribution.distribution import distribution
from media_assets.lib.media.media_metadata import media_metadata
from media_assets.lib.media.normalized_audio import normalized_audio
from media_assets.lib.media.normalized_video import normalized_video
from media_assets.lib.media.raw_media import raw_media
from media_assets.lib.speech.diarization import diarization
from media_assets.lib.speech.speaker_transcript import speaker_transcript
from media_assets.lib.speech.transcript import transcript
from media_assets.lib.text.chapters import chapters
from media_assets.lib.text.enriched_metadata import enriched_metadata

STAGES: tuple[Stage, ...] = (
    raw_media,
    normalized_audio,
    normalized_video,
    media_metadata,
    transcript,
    diarization,
    speaker_transcript,
    chapters,
    enriched_metadata,
    distribution,
)
BY_NAME = {stage.name: stage for stage in STAGES}


def markdown_table() -> str:
    """The README's asset table (checked by a test): `python -m media_assets.lib.stages` prints it."""
    lines = [
        "| asset (module) | compute class | reads | writes tables | quality gates (**blocking**) | what it does |",
        "|---|---|---|---|---|---|",
    ]
    for stage in STAGES:
        gates = ", ".join(f"**{c.name}**" if c.blocking else c.name for c in stage.quality_checks)
        lines.append(
            f"| `{stage.name}` (`lib/{stage.domain}/{stage.name}.py`) | {stage.compute_class} "
            f"| {', '.join(f'`{u}`' for u in stage.upstream) or 'the ingested bytes'} "
            f"| {', '.join(f'`{t}`' for t in stage.tables) or '-'} | {gates} | {stage.description} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
