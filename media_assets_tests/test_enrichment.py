"""Chapters, entities, keywords, categories and distribution files end to end on the lake, with
real models, on episodes spoken from scripts whose topics, boundaries and names are known."""

from __future__ import annotations

import json
import subprocess

import pytest
from mutagen.id3 import ID3

from media_assets.demo import samples
from media_assets.demo.scripts import NAMED_ENTITIES, THREE_TOPICS, TOPIC_SCRIPTS
from media_assets.lib.core import catalog, contracts
from media_assets.lib.core.lake import LocalStore
from media_assets.lib.core.stage import read_document
from media_assets.lib.distribution import formats as distribution
from media_assets.lib.distribution.settings import DistributionSettings
from media_assets.lib.media.ingest import ingest
from media_assets.lib.media.media_contract import MediaLimits
from media_assets.lib.media.settings import MediaSettings
from media_assets.lib.speech import asr
from media_assets.lib.speech.settings import SpeechSettings
from media_assets.lib.stages import BY_NAME
from media_assets.lib.text.settings import TextSettings
from media_assets.lib.text.taxonomy import CATEGORY_NAMES

VOICE = ("en-us", 35)
ASR = asr.AsrSettings(model="tiny.en")
SETTINGS = TextSettings()
BOUNDARY_TOLERANCE_S = 10.0


def _episode(lake: LocalStore, wav) -> str:
    (outcome,) = ingest([wav], lake, MediaLimits(), lambda ids: None)
    episode_id = outcome.episode_id
    BY_NAME["raw_media"].run(lake, episode_id, MediaSettings())
    BY_NAME["normalized_audio"].run(lake, episode_id, MediaSettings())
    BY_NAME["media_metadata"].run(lake, episode_id)
    BY_NAME["transcript"].run(lake, episode_id, SpeechSettings(asr=ASR))
    return episode_id


def _enrich(lake: LocalStore, episode_id: str) -> dict:
    BY_NAME["diarization"].run(lake, episode_id, SpeechSettings())
    BY_NAME["speaker_transcript"].run(lake, episode_id)
    return {
        "chapters": BY_NAME["chapters"].run(lake, episode_id, SETTINGS),
        "enriched_metadata": BY_NAME["enriched_metadata"].run(lake, episode_id, SETTINGS),
        "distribution": BY_NAME["distribution"].run(lake, episode_id, DistributionSettings()),
    }


@pytest.fixture(scope="module")
def three_topics(tmp_path_factory):
    """Cooking, then astronomy, then football, one voice throughout: boundaries come from topics only."""
    folder = tmp_path_factory.mktemp("three_topics")
    sentences = [(*VOICE, s) for topic in THREE_TOPICS for s in TOPIC_SCRIPTS[topic]]
    truth = samples.conversation(folder / "three topics.wav", sentences, gap=0.5)
    lake = LocalStore(folder / "lake")
    episode_id = _episode(lake, folder / "three topics.wav")
    results = _enrich(lake, episode_id)
    sizes = [len(TOPIC_SCRIPTS[t]) for t in THREE_TOPICS]
    boundaries = [truth[sizes[0]].start, truth[sizes[0] + sizes[1]].start]
    return {
        "lake": lake,
        "episode_id": episode_id,
        "truth": truth,
        "boundaries": boundaries,
        "results": results,
        "sql": catalog.connect(lake),
    }


def test_chapters_follow_the_topics(three_topics) -> None:
    rows = (
        three_topics["sql"]
        .execute(
            "select start_time, end_time, title, boundary_reason, category_id from chapters order by chapter_index"
        )
        .fetchall()
    )
    assert 2 <= len(rows) <= 4
    starts = [r[0] for r in rows]
    for boundary in three_topics["boundaries"]:
        assert min(abs(boundary - s) for s in starts[1:]) <= BOUNDARY_TOLERANCE_S, (boundary, starts)
    # contiguous, covering the whole episode
    assert rows[0][0] == 0.0
    assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
    duration = read_document(three_topics["lake"], "normalized_audio", three_topics["episode_id"])["loudness"]
    assert rows[-1][1] == pytest.approx(duration["duration_s"], abs=0.01)
    assert rows[0][3] == "episode_start"
    assert all("topic_shift" in r[3] for r in rows[1:])
    assert all(r[2].strip() and len(r[2].split()) <= 6 for r in rows)
    # each chapter is about the topic spoken in most of it
    for start, end, _, _, category in rows:
        spoken = [t for t in three_topics["truth"] if start <= (t.start + t.end) / 2 < end]
        counts = {topic: sum(s.text in TOPIC_SCRIPTS[topic] for s in spoken) for topic in THREE_TOPICS}
        assert category == max(counts, key=counts.get)


def test_chapter_titles_come_from_what_was_said(three_topics) -> None:
    transcript = " ".join(
        w for (w,) in three_topics["sql"].execute("select lower(word) from transcript_words").fetchall()
    )
    for title, phrases in three_topics["sql"].execute("select title, key_phrases from chapters").fetchall():
        assert phrases
        for phrase in phrases.split("; "):
            assert phrase.split()[-1] in transcript, phrase
        assert title.lower().split(" and ")[0] in phrases.lower()


def test_named_entities_are_found_with_when_they_were_said(three_topics) -> None:
    found = (
        three_topics["sql"]
        .execute("select entity, label, first_start_time, first_end_time, mentions from entities")
        .fetchall()
    )
    by_text = {(e.lower(), label): (start, end) for e, label, start, end, _ in found}
    hits = 0
    for _, text, label in NAMED_ENTITIES:
        if (text.lower(), label) not in by_text:
            continue
        hits += 1
        start, end = by_text[(text.lower(), label)]
        said_in = next(t for t in three_topics["truth"] if text in t.text)  # the first sentence naming it
        assert said_in.start - 0.5 <= start <= end <= said_in.end + 0.5, (text, start, end, said_in)
    assert hits / len(NAMED_ENTITIES) >= 0.8, (found, NAMED_ENTITIES)


def test_keywords_are_ranked_and_timed(three_topics) -> None:
    sql = three_topics["sql"]
    rows = sql.execute("select rank, keyword, score, mentions, first_start_time from keywords order by rank").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == SETTINGS.keyword_count
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
    words = sql.execute("select start_time, lower(word) from transcript_words").fetchall()
    for _, keyword, _, _, first in rows:
        # the keyword's first word was said at the recorded time
        said = [w for start, w in words if abs(start - first) < 0.01]
        assert any(keyword.split()[0].lower() in w for w in said), (keyword, first, said)


def test_categories_rank_the_episode_topics_first(three_topics) -> None:
    rows = three_topics["sql"].execute("select rank, category_id, score from classifications order by rank").fetchall()
    assert all(0 <= score <= 1 for _, _, score in rows)
    assert {category for _, category, _ in rows[:3]} == set(THREE_TOPICS)


def test_distribution_files_parse_with_independent_readers(three_topics) -> None:
    lake, episode_id = three_topics["lake"], three_topics["episode_id"]
    chapters = (
        three_topics["sql"]
        .execute("select start_time, end_time, title from chapters order by chapter_index")
        .fetchall()
    )
    outputs = three_topics["results"]["distribution"].document["outputs"]
    document = json.loads(lake.get_bytes(outputs["podcasting_chapters"]["key"]))
    contracts.validate_document("podcasting_chapters", document)
    assert document["version"] == "1.2.0"
    assert [(c["startTime"], c["endTime"], c["title"]) for c in document["chapters"]] == chapters
    vtt = lake.get_bytes(outputs["webvtt_chapters"]["key"]).decode("utf-8")
    assert distribution.parse_webvtt_cues(vtt) == chapters
    with lake.local_copy(outputs["mp3"]["key"]) as mp3:
        tag = ID3(mp3)
        (toc,) = tag.getall("CTOC")
        frames = {f.element_id: f for f in tag.getall("CHAP")}
        read = [
            (frames[i].start_time / 1000, frames[i].end_time / 1000, str(frames[i].sub_frames["TIT2"]))
            for i in toc.child_element_ids
        ]
        assert read == chapters
        assert str(tag["TIT2"]) == "three topics"
        assert (
            str(tag["TCON"])
            == CATEGORY_NAMES[read_document(lake, "enriched_metadata", episode_id)["categories"][0]["id"]]
        )
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-of", "json", str(mp3)],
            check=True,
            capture_output=True,
            text=True,
        )
    probed = json.loads(probe.stdout)
    assert [c["tags"]["title"] for c in probed["chapters"]] == [c[2] for c in chapters]
    assert float(probed["format"]["duration"]) == pytest.approx(chapters[-1][1], abs=0.1)


def test_rerun_does_no_work(three_topics) -> None:
    again = _enrich(three_topics["lake"], three_topics["episode_id"])
    for stage, result in again.items():
        assert result.skipped, stage
        assert result.fingerprint == three_topics["results"][stage].fingerprint


@pytest.mark.parametrize("topic", ["technology", "history", "health_and_fitness"])
def test_topic_pure_episodes_rank_their_category_first(tmp_path, topic) -> None:
    wav = samples.speech(tmp_path / f"{topic}.wav", " ".join(TOPIC_SCRIPTS[topic]))
    lake = LocalStore(tmp_path / "lake")
    episode_id = _episode(lake, wav)
    result = BY_NAME["enriched_metadata"].run(lake, episode_id, SETTINGS)
    categories = result.document["categories"]
    assert categories[0]["id"] == topic, categories


def test_episodes_without_speech_get_one_chapter_and_empty_enrichment(tmp_path) -> None:
    lake = LocalStore(tmp_path / "lake")
    episode_id = _episode(lake, samples.tone(tmp_path / "tone.wav", seconds=8.0, lufs=-23.0))
    results = _enrich(lake, episode_id)
    (chapter,) = results["chapters"].document["chapters"]
    assert chapter["start_time"] == 0.0 and chapter["end_time"] == pytest.approx(8.0, abs=0.01)
    assert chapter["boundary_reason"] == "episode_start"
    enriched = results["enriched_metadata"].document
    assert enriched["entities"] == [] and enriched["keywords"] == [] and enriched["categories"] == []
    assert results["distribution"].document["chapter_count"] == 1


def test_embedded_captions_are_a_second_text_source_and_tags_are_merged(tmp_path) -> None:
    cues = [(0.5, 2.5, "Welcome to Paris with Maria Lopez."), (3.0, 5.5, "Tomorrow we visit the Louvre museum.")]
    video = samples.video_with_subtitles(tmp_path / "clip.mp4", seconds=6.0, cues=cues)
    lake = LocalStore(tmp_path / "lake")
    episode_id = _episode(lake, video)  # its audio is a tone: the transcript is empty
    document = BY_NAME["enriched_metadata"].run(lake, episode_id, SETTINGS).document
    assert document["text_sources"] == {"transcript": {"words": 0}, "captions": {"words": 12}}
    sql = catalog.connect(lake)
    found = sql.execute("select entity, label, first_start_time, first_end_time, sources from entities").fetchall()
    assert ("Paris", "GPE", 0.5, 2.5, "captions") in found
    assert ("Maria Lopez", "PERSON", 0.5, 2.5, "captions") in found
    assert any("museum" in k for (k,) in sql.execute("select keyword from keywords").fetchall())
    assert document["tags"]["title"] == samples.VIDEO_METADATA["title"]
    assert document["exif"]["latitude"] == pytest.approx(float(samples.VIDEO_METADATA["location"][:8]), abs=1e-3)
