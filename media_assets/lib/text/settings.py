"""Every knob of the text stages, with its one default. `resources/text.py` exposes each as a
resource field (UI launchpad, `MEDIA_LAKE_*`); each stage fingerprints the part it reads."""

from __future__ import annotations

from dataclasses import dataclass

from media_assets.lib.core.settings import knob
from media_assets.lib.text.segmentation import ChapterSettings
from media_assets.lib.text.text_models import DEFAULT_SPACY_MODEL, PACKAGED_EMBEDDER


@dataclass(frozen=True)
class TextSettings:
    embedding_model: str = knob(
        PACKAGED_EMBEDDER,
        "embedding_model",
        "all-MiniLM-L6-v2 (packaged, offline) | a sentence-transformers dir | a hub name (HF_TOKEN)",
    )
    spacy_model: str = knob(
        DEFAULT_SPACY_MODEL, "spacy_model", "an installed spaCy pipeline (en_core_web_sm, ...) or a directory"
    )
    keyword_count: int = knob(15, "keyword_count", "keywords kept per episode")
    chapters: ChapterSettings = ChapterSettings()
