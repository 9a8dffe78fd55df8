"""The media_metadata stage: `media_metadata` below; its docstring is the description the UI shows."""

from __future__ import annotations

from media_assets.lib.core.lake import LakeStore, raw_key
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.media import embedded


@stage(
    upstream=("raw_media",),
    code_version="1",
    compute_class="cpu-metadata",
    kinds=("ffmpeg", "parquet"),
    tables=("media_metadata", "captions"),
)
def media_metadata(lake: LakeStore, episode_id: str) -> StageResult:
    """ID3 frames (mutagen), container and stream tags, creation time/device/location, and text subtitle
    streams extracted as timed cues. Writes `media_metadata` and `captions`."""
    run = StageRun(lake, media_metadata, episode_id, {})
    if done := run.up_to_date():
        return done
    probe = run.upstream["raw_media"]["probe"]
    rows: list[dict] = []
    captions: list[dict] = []
    caption_streams: list[dict] = []
    with lake.local_copy(raw_key(episode_id)) as original:
        id3 = embedded.id3_frames(original)
        for stream in probe["streams"]:
            if stream["codec_type"] != "subtitle":
                continue
            entry = {"stream_index": stream["index"], "codec": stream["codec_name"], "language": stream.get("language")}
            if stream["codec_name"] not in embedded.TEXT_SUBTITLE_CODECS:
                caption_streams.append(
                    {**entry, "cue_count": 0, "extracted": False, "reason": "bitmap subtitles carry no text"}
                )
                continue
            cues = embedded.extract_subtitle_cues(original, stream["index"])
            captions += [
                {"episode_id": episode_id, **entry, "cue_index": n, "start_time": start, "end_time": end, "text": text}
                for n, (start, end, text) in enumerate(cues)
            ]
            caption_streams.append({**entry, "cue_count": len(cues), "extracted": True})
    exif = embedded.exif_fields(probe["tags"], [s["tags"] for s in probe["streams"]])
    rows += [{"source": "id3", "stream_index": None, "key": k, "value": v} for k, v in id3.items()]
    rows += [{"source": "container", "stream_index": None, "key": k, "value": v} for k, v in probe["tags"].items()]
    rows += [
        {"source": "stream", "stream_index": s["index"], "key": k, "value": v}
        for s in probe["streams"]
        for k, v in s["tags"].items()
    ]
    rows += [{"source": "exif", "stream_index": None, "key": k, "value": str(v)} for k, v in exif.items()]
    run.put_table("media_metadata", [{"episode_id": episode_id, **row} for row in rows])
    run.put_table("captions", captions)
    return run.finish({"id3": id3, "container_tags": probe["tags"], "exif": exif, "caption_streams": caption_streams})
