"""Quality gate of the distribution stage: the files as stored in the lake read back as intended."""

from __future__ import annotations

import json

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.quality import CheckOutcome, QualityCheck
from media_assets.lib.core.stage import read_document
from media_assets.lib.distribution import formats


def check_read_back(lake: LakeStore, document: dict, settings) -> CheckOutcome:
    outputs = document["outputs"]
    chapters = read_document(lake, "chapters", document["episode_id"])["chapters"]
    marks = formats.chapter_marks(chapters)
    formats.validate_podcasting_chapters(json.loads(lake.get_bytes(outputs["podcasting_chapters"]["key"])))
    cues = formats.parse_webvtt_cues(lake.get_bytes(outputs["webvtt_chapters"]["key"]).decode("utf-8"))
    with lake.local_copy(outputs["mp3"]["key"]) as mp3:
        formats.validate_mp3(mp3, marks, {**document["tags"], "keywords": document["keywords"]})
    figures = {"chapters": len(marks), "webvtt_cues": len(cues), "mp3_bytes": document["mp3_size_bytes"]}
    if len(cues) != len(marks):
        return CheckOutcome(False, f"WebVTT has {len(cues)} cues for {len(marks)} chapters", figures)
    return CheckOutcome(True, f"chapters JSON, WebVTT and MP3 ({len(marks)} chapters) read back", figures)


READ_BACK = QualityCheck(
    "read_back",
    "The stored Podcasting 2.0 JSON validates, the WebVTT parses with one cue per chapter, and the MP3's ID3 "
    "chapters and tags read back as written.",
    blocking=False,
    evaluate=check_read_back,
)
