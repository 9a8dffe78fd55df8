"""Which text models the enrichment stages use, and how chapters are cut. Part of their fingerprints."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from media_assets.lib.text.segmentation import ChapterSettings
from media_assets.lib.text.stages import EnrichmentSettings
from media_assets.lib.text.text_models import DEFAULT_SPACY_MODEL, PACKAGED_EMBEDDER
from media_assets.resources.settings import env_overrides


class EnrichmentResource(dg.ConfigurableResource):
    embedding_model: str = Field(
        default=PACKAGED_EMBEDDER,
        description="all-MiniLM-L6-v2 (packaged, offline) | a sentence-transformers dir | a hub name (HF_TOKEN)",
    )
    spacy_model: str = Field(
        default=DEFAULT_SPACY_MODEL, description="an installed spaCy pipeline (en_core_web_sm, ...) or a directory"
    )
    keyword_count: int = Field(default=15, description="keywords kept per episode")
    chapter_min_seconds: float = Field(default=30.0, description="shortest chapter")
    chapter_max_seconds: float = Field(default=900.0, description="longest chapter before a forced split")
    mp3_bitrate: str = Field(default="128k", description="bitrate of the distribution MP3 (CBR)")

    @classmethod
    def from_env(cls) -> EnrichmentResource:
        """Defaults overridden by `MEDIA_LAKE_<FIELD>` variables, e.g. MEDIA_LAKE_CHAPTER_MIN_SECONDS=60."""
        return cls(**env_overrides(cls))

    def settings(self) -> EnrichmentSettings:
        chapters = ChapterSettings(min_seconds=self.chapter_min_seconds, max_seconds=self.chapter_max_seconds)
        return EnrichmentSettings(self.embedding_model, self.spacy_model, self.keyword_count, chapters)
