"""The figures a materialization shows in the UI, computed from stage documents with known answers."""

from __future__ import annotations

from media_assets.lib import summaries
from media_assets.lib.stages import STAGES


def test_every_stage_has_a_summary() -> None:
    assert set(summaries.BY_STAGE) == {stage.name for stage in STAGES}


def _word(probability: float) -> dict:
    return {"start": 0.0, "end": 0.1, "text": "w", "probability": probability}


def test_transcript_counts_words_averages_probability_and_previews_as_markdown() -> None:
    document = {
        "stage": "transcript",
        "language": "en",
        "model": "tiny.en",
        "empty_reason": None,
        "segments": [
            {"start": 0.0, "end": 2.0, "text": " Hello *world* | [link](x)", "words": [_word(0.5), _word(1.0)]},
            {"start": 3725.4, "end": 3727.0, "text": "Later.", "words": [_word(0.75)]},
        ],
    }
    shown = summaries.summary(document)
    assert (shown["language"], shown["word_count"], shown["mean_word_probability"]) == ("en", 3, 0.75)
    preview = shown["transcript_preview"]
    assert isinstance(preview, summaries.Markdown)
    assert preview == "**0:00** Hello \\*world\\* \\| \\[link\\](x)\n\n**1:02:05** Later."


def test_an_empty_transcript_says_why() -> None:
    document = {"stage": "transcript", "language": None, "model": "base", "empty_reason": "no_speech", "segments": []}
    shown = summaries.summary(document)
    assert shown["word_count"] == 0 and "mean_word_probability" not in shown
    assert shown["empty_reason"] == "no_speech" and "no_speech" in shown["transcript_preview"]


def test_diarization_gives_talk_time_shares() -> None:
    turns = [
        {"speaker_id": "SPEAKER_00", "start_time": 0.0, "end_time": 30.0, "confidence_score": 0.9},
        {"speaker_id": "SPEAKER_01", "start_time": 30.0, "end_time": 40.0, "confidence_score": 0.7},
        {"speaker_id": "SPEAKER_00", "start_time": 40.0, "end_time": 70.0, "confidence_score": 0.8},
    ]
    shown = summaries.summary({"stage": "diarization", "speaker_count": 2, "turns": turns})
    assert shown["speaker_count"] == 2 and shown["mean_turn_confidence"] == 0.8
    assert shown["talk_time_share"].splitlines()[2:] == ["| SPEAKER_00 | 60.0 | 86% |", "| SPEAKER_01 | 10.0 | 14% |"]


def test_chapters_and_enrichment_list_titles_entities_and_categories() -> None:
    chapters = [{"start_time": 0.0, "title": "Rockets"}, {"start_time": 95.0, "title": "The Moon"}]
    shown = summaries.summary({"stage": "chapters", "chapters": chapters})
    assert shown["chapter_titles"] == "1. **0:00** Rockets\n2. **1:35** The Moon"
    entities = [
        {"text": "NASA", "label": "ORG", "mentions": 1, "first_start_time": 2.0},
        {"text": "Moon", "label": "LOC", "mentions": 3, "first_start_time": 5.0},
    ]
    categories = [{"id": "science", "score": 0.64}, {"id": "history", "score": 0.07}]
    enriched = summaries.summary(
        {"stage": "enriched_metadata", "entities": entities, "keywords": ["a", "b"], "categories": categories}
    )
    assert enriched["top_entities"] == "- Moon (LOC, 3x)\n- NASA (ORG, 1x)"
    assert enriched["top_keywords"] == "a, b"
    assert enriched["top_categories"] == "- science: 0.64\n- history: 0.07"
