"""The distribution stage: `distribution` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses
import json

from media_assets.lib.core.lake import LakeStore, media_key
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.distribution import formats
from media_assets.lib.distribution.quality import READ_BACK
from media_assets.lib.distribution.settings import DistributionSettings
from media_assets.lib.text.taxonomy import CATEGORY_NAMES

FILES = (("chapters.json", "podcasting_chapters"), ("chapters.vtt", "webvtt_chapters"), ("episode.mp3", "mp3"))


@stage(
    upstream=("chapters", "enriched_metadata", "normalized_audio"),
    code_version="1",
    compute_class="cpu-normalization",
    kinds=("ffmpeg", "json"),
    checks=(READ_BACK,),
)
def distribution(lake: LakeStore, episode_id: str, settings: DistributionSettings) -> StageResult:
    """`media/distribution/episode_id=<id>/`: `chapters.json` (Podcasting 2.0, 1.2.0), `chapters.vtt` (WebVTT
    chapters) and `episode.mp3` (ID3v2.4 CHAP/CTOC chapter frames and the episode's tags), each
    validated after writing."""
    run = StageRun(lake, distribution, episode_id, dataclasses.asdict(settings))
    if done := run.up_to_date():
        return done
    chapters_doc, enriched_doc = run.upstream["chapters"], run.upstream["enriched_metadata"]
    marks = formats.chapter_marks(chapters_doc["chapters"])
    tags = dict(enriched_doc["tags"])
    if enriched_doc["categories"]:
        tags.setdefault("genre", CATEGORY_NAMES[enriched_doc["categories"][0]["id"]])
    tags["keywords"] = [k for k in enriched_doc["keywords"] if "," not in k][:10]  # ID3 joins them with commas
    json_doc = formats.podcasting_chapters(
        marks, title=tags["title"], author=tags.get("artist"), podcast_name=tags.get("album")
    )
    formats.validate_podcasting_chapters(json_doc)
    vtt = formats.webvtt_chapters(marks)
    formats.parse_webvtt_cues(vtt)
    with lake.scratch_dir() as tmp:
        (tmp / "chapters.json").write_text(json.dumps(json_doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "chapters.vtt").write_text(vtt, encoding="utf-8")
        with lake.local_copy(run.upstream["normalized_audio"]["outputs"]["audio"]["key"]) as wav:
            formats.tagged_mp3(wav, tmp / "episode.mp3", marks, tags, bitrate=settings.mp3_bitrate)
        formats.validate_mp3(tmp / "episode.mp3", marks, tags)
        mp3_bytes = (tmp / "episode.mp3").stat().st_size
        for name, kind in FILES:
            run.put_file(kind, media_key("distribution", episode_id, name), tmp / name)
    return run.finish(
        {
            "chapter_count": len(marks),
            "tags": {k: v for k, v in tags.items() if k != "keywords"},
            "keywords": tags["keywords"],
            "mp3_size_bytes": mp3_bytes,
        }
    )
