"""The enriched_metadata stage: `enriched_metadata` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses
from pathlib import PurePath

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.stage import StageResult, StageRun, read_table, stage
from media_assets.lib.media.ingest import read_registration
from media_assets.lib.speech.timed_text import TimedText, TimedWord
from media_assets.lib.text import classification, entities, keyphrases
from media_assets.lib.text.settings import TextSettings
from media_assets.lib.text.taxonomy import CATEGORY_NAMES
from media_assets.lib.text.text_models import load_embedder, load_spacy


@stage(
    upstream=("transcript", "media_metadata"),
    code_version="1",
    compute_class="cpu-nlp",
    kinds=("parquet", "spacy"),
    tables=("entities", "keywords", "classifications"),
)
def enriched_metadata(lake: LakeStore, episode_id: str, settings: TextSettings) -> StageResult:
    """spaCy entities with when each was first said, ranked keywords and category scores, from the transcript
    and embedded captions, merged with the ID3/container tags."""
    config = {k: v for k, v in dataclasses.asdict(settings).items() if k != "chapters"}
    run = StageRun(lake, enriched_metadata, episode_id, config)
    if done := run.up_to_date():
        return done
    text_doc, meta_doc = run.upstream["transcript"], run.upstream["media_metadata"]
    cues = read_table(lake, "captions", episode_id)
    transcript_words = [TimedWord(w["start"], w["end"], w["text"]) for s in text_doc["segments"] for w in s["words"]]
    sources = {
        "transcript": TimedText(transcript_words),
        # caption words carry their cue's times: the finest timing a subtitle track has
        "captions": TimedText([TimedWord(c["start_time"], c["end_time"], w) for c in cues for w in c["text"].split()]),
    }
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
    run.put_table(
        "entities",
        [
            {
                "episode_id": episode_id,
                "entity": e.text,
                "label": e.label,
                "mentions": e.mentions,
                "first_start_time": e.first_start,
                "first_end_time": e.first_end,
                "sources": ",".join(e.sources),
            }
            for e in found
        ],
    )
    run.put_table(
        "keywords",
        [
            {
                "episode_id": episode_id,
                "rank": n,
                "keyword": k.text,
                "score": k.score,
                "mentions": k.count,
                "first_start_time": k.first_time,
            }
            for n, k in enumerate(keywords, start=1)
        ],
    )
    run.put_table(
        "classifications",
        [
            {
                "episode_id": episode_id,
                "rank": n,
                "category_id": category,
                "category_name": CATEGORY_NAMES[category],
                "score": score,
            }
            for n, (category, score) in enumerate(scores, start=1)
        ],
    )
    return run.finish(
        {
            "language": text_doc["language"],
            "tags": descriptive_tags(meta_doc, read_registration(lake, episode_id)["original_name"]),
            "exif": meta_doc["exif"],
            "text_sources": {name: {"words": len(timed.words)} for name, timed in sources.items()},
            "keywords": [k.text for k in keywords],
            "entities": [
                {"text": e.text, "label": e.label, "mentions": e.mentions, "first_start_time": e.first_start}
                for e in found
            ],
            "categories": [{"id": c, "score": s} for c, s in scores[:3]],
        }
    )


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
        from_container = next((container[n] for n in names if n in container), None)
        value = next((v for v in id3 if v.strip()), None) or from_container
        if value:
            tags[tag] = value.strip()
    tags.setdefault("title", PurePath(original_name).stem or original_name)
    return tags
