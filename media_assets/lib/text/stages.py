"""The text stages as plain functions of (lake, episode id, settings): chapters (topic-aware chapter
marks), enriched_metadata (entities, keywords, categories, merged tags) and distribution (the
files podcast hosts and players load: Podcasting 2.0 chapters JSON, WebVTT chapters, tagged MP3)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import PurePath

import numpy as np

from media_assets.lib.core.lake import LakeStore, media_key
from media_assets.lib.core.stage import StageResult, StageRun, read_document, read_table
from media_assets.lib.distribution import formats as distribution
from media_assets.lib.media.stages import read_registration
from media_assets.lib.speech.stages import attributed_words
from media_assets.lib.speech.timed_text import Sentence, TimedText, TimedWord
from media_assets.lib.text import classification, entities, keyphrases, taxonomy
from media_assets.lib.text.segmentation import Boundary, ChapterSettings, boundaries
from media_assets.lib.text.text_models import DEFAULT_SPACY_MODEL, PACKAGED_EMBEDDER, load_embedder, load_spacy

CODE_VERSIONS = {"chapters": "1", "enriched_metadata": "1", "distribution": "1"}
TITLE_PHRASES = 5  # key phrases kept per chapter
CATEGORY_NAMES = {c.id: c.name for c in taxonomy.CATEGORIES}


@dataclasses.dataclass(frozen=True)
class EnrichmentSettings:
    embedding_model: str = PACKAGED_EMBEDDER
    spacy_model: str = DEFAULT_SPACY_MODEL
    keyword_count: int = 15
    chapters: ChapterSettings = ChapterSettings()


@dataclasses.dataclass(frozen=True)
class _Chapter:
    start: float
    end: float
    title: str


# --- chapters -------------------------------------------------------------------


def chapters_stage(lake: LakeStore, episode_id: str, settings: EnrichmentSettings) -> StageResult:
    text_doc = read_document(lake, "transcript", episode_id)
    turns_doc = read_document(lake, "diarization", episode_id)
    audio_doc = read_document(lake, "normalized_audio", episode_id)
    stage = StageRun(lake, "chapters", episode_id, CODE_VERSIONS["chapters"], dataclasses.asdict(settings),
                     {"transcript": text_doc["fingerprint"], "diarization": turns_doc["fingerprint"],
                      "normalized_audio": audio_doc["fingerprint"]})  # fmt: skip
    if done := stage.up_to_date():
        return done
    duration = audio_doc["loudness"]["duration_s"]
    timed = TimedText(attributed_words(text_doc, turns_doc))
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
    stage.put_table("chapters", rows)
    return stage.finish({
        "sentence_count": len(sentences),
        "embedding_model": embedder.name,
        "chapters": [{k: row[k] for k in ("chapter_index", "start_time", "end_time", "title", "boundary_reason",
                                          "key_phrases", "category_id")} for row in rows],
    })  # fmt: skip


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


# --- enriched metadata ----------------------------------------------------------


def enriched_metadata_stage(lake: LakeStore, episode_id: str, settings: EnrichmentSettings) -> StageResult:
    text_doc = read_document(lake, "transcript", episode_id)
    meta_doc = read_document(lake, "media_metadata", episode_id)
    config = {k: v for k, v in dataclasses.asdict(settings).items() if k != "chapters"}
    stage = StageRun(lake, "enriched_metadata", episode_id, CODE_VERSIONS["enriched_metadata"], config,
                     {"transcript": text_doc["fingerprint"], "media_metadata": meta_doc["fingerprint"]})  # fmt: skip
    if done := stage.up_to_date():
        return done
    cues = read_table(lake, "captions", episode_id)
    sources = {
        "transcript": TimedText([TimedWord(w["start"], w["end"], w["text"]) for s in text_doc["segments"]
                                 for w in s["words"]]),
        # caption words carry their cue's times: the finest timing a subtitle track has
        "captions": TimedText([TimedWord(c["start_time"], c["end_time"], w) for c in cues for w in c["text"].split()]),
    }  # fmt: skip
    nlp = load_spacy(settings.spacy_model)
    embedder = load_embedder(settings.embedding_model)
    mentions, candidates, passages = [], [], []
    for name, timed in sources.items():
        sentences = timed.sentences()
        docs = list(entities.parse(nlp, timed, sentences))
        mentions += entities.mentions(iter(docs), timed, name)
        candidates.append(keyphrases.candidates(docs, timed))
        passages += [s.text for s in sentences]
    target = keyphrases.centroid(embedder.encode(passages))
    keywords = keyphrases.rank(keyphrases.merge(*candidates), target, embedder, limit=settings.keyword_count)
    found = entities.merge(mentions)
    scores = classification.classify(passages, embedder) if passages else []
    stage.put_table("entities", [
        {"episode_id": episode_id, "entity": e.text, "label": e.label, "mentions": e.mentions,
         "first_start_time": e.first_start, "first_end_time": e.first_end, "sources": ",".join(e.sources)}
        for e in found
    ])  # fmt: skip
    stage.put_table("keywords", [
        {"episode_id": episode_id, "rank": n, "keyword": k.text, "score": k.score, "mentions": k.count,
         "first_start_time": k.first_time}
        for n, k in enumerate(keywords, start=1)
    ])  # fmt: skip
    stage.put_table("classifications", [
        {"episode_id": episode_id, "rank": n, "category_id": category, "category_name": CATEGORY_NAMES[category],
         "score": score}
        for n, (category, score) in enumerate(scores, start=1)
    ])  # fmt: skip
    return stage.finish({
        "language": text_doc["language"],
        "tags": descriptive_tags(meta_doc, read_registration(lake, episode_id)["original_name"]),
        "exif": meta_doc["exif"],
        "text_sources": {name: {"words": len(timed.words)} for name, timed in sources.items()},
        "keywords": [k.text for k in keywords],
        "entities": [{"text": e.text, "label": e.label, "mentions": e.mentions, "first_start_time": e.first_start}
                     for e in found],
        "categories": [{"id": c, "score": s} for c, s in scores[:3]],
    })  # fmt: skip


_TAG_SOURCES = {  # episode tag: (ID3 frame ids, container tag names), first found wins
    "title": (("TIT2",), ("title",)),
    "artist": (("TPE1", "TPE2"), ("artist", "album_artist")),
    "album": (("TALB",), ("album",)),
    "genre": (("TCON",), ("genre",)),
    "date": (("TDRC", "TYER"), ("date", "creation_time")),
    "comment": (("COMM",), ("comment", "description")),
}


def descriptive_tags(meta_doc: dict, original_name: str) -> dict[str, str]:
    """The episode's descriptive tags from ID3 frames, then container tags; the title falls back to
    the uploaded file's name without its extension."""
    container = {k.lower(): v for k, v in meta_doc["container_tags"].items()}
    tags = {}
    for tag, (frames, names) in _TAG_SOURCES.items():
        id3 = [v for k, v in sorted(meta_doc["id3"].items()) if k.split(":")[0] in frames]
        value = next((v for v in id3 if v.strip()), None) or next((container[n] for n in names if n in container),
                                                                   None)  # fmt: skip
        if value:
            tags[tag] = value.strip()
    tags.setdefault("title", PurePath(original_name).stem or original_name)
    return tags


# --- distribution ---------------------------------------------------------------


def distribution_stage(lake: LakeStore, episode_id: str, bitrate: str = "128k") -> StageResult:
    chapters_doc = read_document(lake, "chapters", episode_id)
    enriched_doc = read_document(lake, "enriched_metadata", episode_id)
    audio_doc = read_document(lake, "normalized_audio", episode_id)
    stage = StageRun(lake, "distribution", episode_id, CODE_VERSIONS["distribution"], {"mp3_bitrate": bitrate},
                     {"chapters": chapters_doc["fingerprint"], "enriched_metadata": enriched_doc["fingerprint"],
                      "normalized_audio": audio_doc["fingerprint"]})  # fmt: skip
    if done := stage.up_to_date():
        return done
    marks = [_Chapter(c["start_time"], c["end_time"], c["title"]) for c in chapters_doc["chapters"]]
    tags = dict(enriched_doc["tags"])
    if enriched_doc["categories"]:
        tags.setdefault("genre", CATEGORY_NAMES[enriched_doc["categories"][0]["id"]])
    tags["keywords"] = [k for k in enriched_doc["keywords"] if "," not in k][:10]  # ID3 joins them with commas
    json_doc = distribution.podcasting_chapters(marks, title=tags["title"], author=tags.get("artist"),
                                                podcast_name=tags.get("album"))  # fmt: skip
    distribution.validate_podcasting_chapters(json_doc)
    vtt = distribution.webvtt_chapters(marks)
    distribution.parse_webvtt_cues(vtt)
    with lake.scratch_dir() as tmp:
        (tmp / "chapters.json").write_text(json.dumps(json_doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "chapters.vtt").write_text(vtt, encoding="utf-8")
        with lake.local_copy(audio_doc["outputs"]["audio"]["key"]) as wav:
            distribution.tagged_mp3(wav, tmp / "episode.mp3", marks, tags, bitrate=bitrate)
        distribution.validate_mp3(tmp / "episode.mp3", marks, tags)
        mp3_bytes = (tmp / "episode.mp3").stat().st_size
        for name, kind in (("chapters.json", "podcasting_chapters"), ("chapters.vtt", "webvtt_chapters"),
                           ("episode.mp3", "mp3")):  # fmt: skip
            stage.put_file(kind, media_key("distribution", episode_id, name), tmp / name)
    return stage.finish({"chapter_count": len(marks), "tags": {k: v for k, v in tags.items() if k != "keywords"},
                         "keywords": tags["keywords"], "mp3_size_bytes": mp3_bytes})  # fmt: skip
