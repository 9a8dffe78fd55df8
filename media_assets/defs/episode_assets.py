"""The per-episode stage assets, listed once: `episode_job` runs them all, and the catalog
depends on every one that writes a table (declared by `table_metadata`)."""

from media_assets.defs.diarize import diarization, speaker_transcript
from media_assets.defs.enrich import chapters, distribution, enriched_metadata
from media_assets.defs.ingest import raw_media
from media_assets.defs.metadata import media_metadata
from media_assets.defs.normalize import normalized_audio, normalized_video
from media_assets.defs.transcribe import transcript

EPISODE_ASSETS = (
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
TABLE_WRITERS = tuple(asset for asset in EPISODE_ASSETS if "tables" in asset.metadata_by_key[asset.key])
