"""Which text models the text stages use, and how chapters are cut. Part of their fingerprints."""

from __future__ import annotations

from pydantic import Field

from media_assets.lib.text.segmentation import ChapterSettings
from media_assets.lib.text.settings import TextSettings
from media_assets.resources.settings import SettingsResource

DEFAULT = TextSettings()


class TextResource(SettingsResource):
    embedding_model: str = Field(
        default=DEFAULT.embedding_model,
        description="all-MiniLM-L6-v2 (packaged, offline) | a sentence-transformers dir | a hub name (HF_TOKEN)",
    )
    spacy_model: str = Field(
        default=DEFAULT.spacy_model, description="an installed spaCy pipeline (en_core_web_sm, ...) or a directory"
    )
    keyword_count: int = Field(default=DEFAULT.keyword_count, description="keywords kept per episode")
    chapter_min_seconds: float = Field(default=DEFAULT.chapters.min_seconds, description="shortest chapter")
    chapter_max_seconds: float = Field(
        default=DEFAULT.chapters.max_seconds, description="longest chapter before a forced split"
    )
    chapter_block: int = Field(
        default=DEFAULT.chapters.block, description="sentences per side in the topic and speaker comparisons"
    )
    chapter_full_pause_s: float = Field(
        default=DEFAULT.chapters.full_pause_s, description="a pause this long scores as a full boundary"
    )
    chapter_pause_weight: float = Field(default=DEFAULT.chapters.pause_weight, description="weight of pauses")
    chapter_speaker_weight: float = Field(
        default=DEFAULT.chapters.speaker_weight, description="weight of a change of who talks"
    )
    chapter_min_score: float = Field(default=DEFAULT.chapters.min_score, description="weakest boundary kept")

    def settings(self) -> TextSettings:
        chapters = ChapterSettings(
            min_seconds=self.chapter_min_seconds,
            max_seconds=self.chapter_max_seconds,
            block=self.chapter_block,
            full_pause_s=self.chapter_full_pause_s,
            pause_weight=self.chapter_pause_weight,
            speaker_weight=self.chapter_speaker_weight,
            min_score=self.chapter_min_score,
        )
        return TextSettings(self.embedding_model, self.spacy_model, self.keyword_count, chapters)
