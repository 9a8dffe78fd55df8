"""Every knob of the text stages, with its one default. `resources/text.py` exposes each as a
resource field (UI launchpad, `MEDIA_LAKE_*`); each stage fingerprints the part it reads."""

from __future__ import annotations

from dataclasses import dataclass

from media_assets.lib.text.segmentation import ChapterSettings
from media_assets.lib.text.text_models import DEFAULT_SPACY_MODEL, PACKAGED_EMBEDDER


@dataclass(frozen=True)
class TextSettings:
    embedding_model: str = PACKAGED_EMBEDDER
    spacy_model: str = DEFAULT_SPACY_MODEL
    keyword_count: int = 15  # keywords kept per episode
    chapters: ChapterSettings = ChapterSettings()
