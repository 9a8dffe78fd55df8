"""The chapters stage: `chapters` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

import numpy as np

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.speech.speaker_transcript import attributed_words
from media_assets.lib.speech.timed_text import Sentence, TimedText
from media_assets.lib.text import classification, entities, keyphrases
from media_assets.lib.text.segmentation import Boundary, boundaries
from media_assets.lib.text.settings import TextSettings
from media_assets.lib.text.text_models import load_embedder, load_spacy, one_blas_thread

TITLE_PHRASES = 5  # key phrases kept per chapter


@stage(
    upstream=("transcript", "diarization", "normalized_audio"),
    code_version="1",
    compute_class="cpu-nlp",
    kinds=("parquet", "sentence_transformers", "spacy"),
    tables=("chapters",),
)
def chapters(lake: LakeStore, episode_id: str, settings: TextSettings) -> StageResult:
    """Chapters cut where the topic shifts (sentence embeddings, TextTiling depth), the speech pauses and who
    talks changes; titled from key phrases, with the reason for each boundary."""
    run = StageRun(lake, chapters, episode_id, dataclasses.asdict(settings))
    if done := run.up_to_date():
        return done
    with one_blas_thread():
        duration = run.upstream["normalized_audio"]["loudness"]["duration_s"]
        timed = TimedText(attributed_words(run.upstream["transcript"], run.upstream["diarization"]))
        sentences = timed.sentences()
        embedder = load_embedder(settings.embedding_model)
        vectors = embedder.encode([s.text for s in sentences])
        marks = boundaries(sentences, vectors, duration, settings.chapters)
        ranges = [(b.first_sentence, after.first_sentence) for b, after in zip(marks, marks[1:])]
        ranges.append((marks[-1].first_sentence, len(sentences)))
        centroids = np.array([keyphrases.centroid(vectors[a:b]) for a, b in ranges])
        nlp = load_spacy(settings.spacy_model)
        rows = []
        for n, (mark, (first, stop)) in enumerate(zip(marks, ranges, strict=True)):
            part = sentences[first:stop]
            found = keyphrases.candidates(entities.parse(nlp, timed, part), timed)
            phrases = keyphrases.rank(found, centroids[n], embedder, np.delete(centroids, n, axis=0), TITLE_PHRASES)
            end = marks[n + 1].time if n + 1 < len(marks) else duration
            rows.append(_chapter_row(episode_id, n, mark, end, part, phrases, embedder))
    run.put_table("chapters", rows)
    summary = ("chapter_index", "start_time", "end_time", "title", "boundary_reason", "key_phrases", "category_id")
    return run.finish(
        {
            "sentence_count": len(sentences),
            "embedding_model": embedder.name,
            "chapters": [{k: row[k] for k in summary} for row in rows],
        }
    )


def _chapter_row(episode_id: str, n: int, mark: Boundary, end: float, part: list[Sentence], phrases, embedder) -> dict:
    scores = classification.classify([s.text for s in part], embedder)
    best = scores[0] if part and scores else (None, None)
    return {
        "episode_id": episode_id,
        "chapter_index": n,
        "start_time": round(mark.time, 3),
        "end_time": round(end, 3),
        "title": keyphrases.title(phrases) or f"Chapter {n + 1}",
        "boundary_reason": mark.reason,
        "topic_depth": mark.gap.depth if mark.gap else None,
        "pause_s": mark.gap.pause_s if mark.gap else None,
        "speaker_shift": mark.gap.speaker_shift if mark.gap else None,
        "sentence_count": len(part),
        "word_count": sum(s.last_word - s.first_word + 1 for s in part),
        "key_phrases": "; ".join(p.phrase for p in phrases),
        "category_id": best[0],
        "category_score": best[1],
    }
