"""The per-episode stages as plain functions of (lake, episode id, settings).

Each reads its inputs from the lake, skips when its fingerprint is unchanged (no ffmpeg work),
and otherwise writes its tables, files and JSON document. The Dagster assets in `defs/` are thin
wrappers around these, so the stages also run and test without Dagster.
"""

from __future__ import annotations

import dataclasses

import soundfile

from media_assets.lib.core import contracts
from media_assets.lib.core.lake import LakeStore, document_key, media_key, raw_key
from media_assets.lib.core.stage import StageResult, StageRun, read_document
from media_assets.lib.media import embedded as media_metadata
from media_assets.lib.media import loudness, video
from media_assets.lib.media.media_contract import InspectedMedia, MediaLimits, inspect_media

# Bump a stage's code version whenever its outputs would change for the same inputs.
CODE_VERSIONS = {
    "raw_media": "1",
    "normalized_audio": "3",
    "normalized_video": "2",
    "media_metadata": "1",
}
REGISTRATION = "registration"


def read_registration(lake: LakeStore, episode_id: str) -> dict:
    key = document_key(REGISTRATION, episode_id)
    if not lake.exists(key):
        raise FileNotFoundError(f"episode {episode_id} was never ingested ({key} is missing)")
    return contracts.load_document(REGISTRATION, lake.get_bytes(key))


def _first(streams: list[dict], kind: str) -> dict | None:
    return next((s for s in streams if s["codec_type"] == kind and not s.get("attached_pic")), None)


def episode_row(episode_id: str, registration: dict, media: InspectedMedia) -> dict:
    probe = media.probe
    audio = _first(probe["streams"], "audio")
    picture = _first(probe["streams"], "video")
    return {
        "episode_id": episode_id,
        "sha256": media.sha256,
        "source_uri": registration["source_uri"],
        "original_name": registration["original_name"],
        "size_bytes": media.size_bytes,
        "container": probe["format_name"],
        "duration_s": media.decoded_audio_seconds,
        "header_duration_s": probe["duration_s"],
        "audio_codec": audio["codec_name"],
        "sample_rate": audio["sample_rate"],
        "channels": audio["channels"],
        "has_video": picture is not None,
        "video_codec": picture["codec_name"] if picture else None,
        "width": picture.get("width") if picture else None,
        "height": picture.get("height") if picture else None,
        "stream_count": len(probe["streams"]),
        "sidecar_verified": registration["sidecar_verified"],
    }


def raw_media(lake: LakeStore, episode_id: str, limits: MediaLimits) -> StageResult:
    """Re-verify the stored bytes against the registered SHA-256, probe them and enforce the
    media contract; write the `episodes` row and the probe document."""
    registration = read_registration(lake, episode_id)
    stage = StageRun(
        lake,
        "raw_media",
        episode_id,
        CODE_VERSIONS["raw_media"],
        dataclasses.asdict(limits),
        {"bytes": registration["sha256"]},
    )
    if done := stage.up_to_date():
        return done
    with lake.local_copy(raw_key(episode_id)) as original:
        media = inspect_media(original, limits, expected_sha256=registration["sha256"])
    stage.put_table("episodes", [episode_row(episode_id, registration, media)])
    return stage.finish(
        {
            "sha256": media.sha256,
            "size_bytes": media.size_bytes,
            "decoded_duration_s": media.decoded_audio_seconds,
            "probe": media.probe,
        }
    )


def normalized_audio(lake: LakeStore, episode_id: str, target: loudness.LoudnessTarget) -> StageResult:
    raw = read_document(lake, "raw_media", episode_id)
    stage = StageRun(
        lake,
        "normalized_audio",
        episode_id,
        CODE_VERSIONS["normalized_audio"],
        dataclasses.asdict(target),
        {"raw_media": raw["fingerprint"]},
    )
    if done := stage.up_to_date():
        return done
    streams = raw["probe"]["streams"]
    audio = _first(streams, "audio")
    source_channels = audio["channels"] or 2
    with lake.local_copy(raw_key(episode_id)) as original, lake.scratch_dir() as tmp:
        wav = tmp / "audio.wav"
        report = loudness.normalize(original, wav, target, source_channels)
        row = {
            "episode_id": episode_id,
            **report,
            "channels": loudness.output_channels(source_channels),
            "duration_s": round(soundfile.info(str(wav)).duration, 6),
            "source_stream_index": audio["index"],
            "source_audio_streams": sum(s["codec_type"] == "audio" for s in streams),
            "source_channels": source_channels,
            "source_channel_layout": audio.get("channel_layout"),
            "downmix": "standard stereo matrix" if loudness.downmix_filters(source_channels) else None,
        }
        stage.put_file("audio", media_key("normalized_audio", episode_id, "audio.wav"), wav)
    stage.put_table("loudness", [row])
    return stage.finish({"loudness": row})


def normalized_video(lake: LakeStore, episode_id: str, settings: video.VideoSettings) -> StageResult:
    """H.264/AAC MP4 for episodes with video; audio-only episodes record `skipped` and succeed."""
    raw = read_document(lake, "raw_media", episode_id)
    audio_doc = read_document(lake, "normalized_audio", episode_id)
    stage = StageRun(
        lake,
        "normalized_video",
        episode_id,
        CODE_VERSIONS["normalized_video"],
        dataclasses.asdict(settings),
        {"raw_media": raw["fingerprint"], "normalized_audio": audio_doc["fingerprint"]},
    )
    if done := stage.up_to_date():
        return done
    picture = _first(raw["probe"]["streams"], "video")
    if picture is None:
        return stage.finish({"skipped": True})
    fps = video.frame_rate(picture.get("avg_frame_rate"))
    with (
        lake.local_copy(raw_key(episode_id)) as original,
        lake.local_copy(audio_doc["outputs"]["audio"]["key"]) as wav,
        lake.scratch_dir() as tmp,
    ):
        mp4 = tmp / "video.mp4"
        video.normalize_video(original, wav, mp4, fps, settings)
        keyframes = video.keyframe_times(mp4)
        gaps = [b - a for a, b in zip(keyframes, keyframes[1:])]
        rendition = {
            "episode_id": episode_id,
            "codec": "h264",
            "width": picture["width"],
            "height": picture["height"],
            "frame_rate": round(fps, 6),
            "gop_seconds": settings.gop_seconds,
            "keyframe_count": len(keyframes),
            "max_keyframe_gap_s": round(max(gaps, default=0.0), 6),
            "audio_codec": "aac",
            "duration_s": raw["decoded_duration_s"],
            "faststart": video.is_faststart(mp4),
            "size_bytes": mp4.stat().st_size,
        }
        stage.put_file("video", media_key("normalized_video", episode_id, "video.mp4"), mp4)
    stage.put_table("video_renditions", [rendition])
    return stage.finish({"skipped": False, "rendition": rendition, "keyframe_times": keyframes})


def media_metadata_stage(lake: LakeStore, episode_id: str) -> StageResult:
    raw = read_document(lake, "raw_media", episode_id)
    stage = StageRun(
        lake, "media_metadata", episode_id, CODE_VERSIONS["media_metadata"], {}, {"raw_media": raw["fingerprint"]}
    )
    if done := stage.up_to_date():
        return done
    probe = raw["probe"]
    rows: list[dict] = []
    captions: list[dict] = []
    caption_streams: list[dict] = []
    with lake.local_copy(raw_key(episode_id)) as original:
        id3 = media_metadata.id3_frames(original)
        for stream in probe["streams"]:
            if stream["codec_type"] != "subtitle":
                continue
            entry = {"stream_index": stream["index"], "codec": stream["codec_name"], "language": stream.get("language")}
            if stream["codec_name"] not in media_metadata.TEXT_SUBTITLE_CODECS:
                caption_streams.append(
                    {**entry, "cue_count": 0, "extracted": False, "reason": "bitmap subtitles carry no text"}
                )
                continue
            cues = media_metadata.extract_subtitle_cues(original, stream["index"])
            captions += [
                {"episode_id": episode_id, **entry, "cue_index": n, "start_time": start, "end_time": end, "text": text}
                for n, (start, end, text) in enumerate(cues)
            ]
            caption_streams.append({**entry, "cue_count": len(cues), "extracted": True})
    exif = media_metadata.exif_fields(probe["tags"], [s["tags"] for s in probe["streams"]])
    rows += [{"source": "id3", "stream_index": None, "key": k, "value": v} for k, v in id3.items()]
    rows += [{"source": "container", "stream_index": None, "key": k, "value": v} for k, v in probe["tags"].items()]
    rows += [
        {"source": "stream", "stream_index": s["index"], "key": k, "value": v}
        for s in probe["streams"]
        for k, v in s["tags"].items()
    ]
    rows += [{"source": "exif", "stream_index": None, "key": k, "value": str(v)} for k, v in exif.items()]
    stage.put_table("media_metadata", [{"episode_id": episode_id, **row} for row in rows])
    stage.put_table("captions", captions)
    return stage.finish({"id3": id3, "container_tags": probe["tags"], "exif": exif, "caption_streams": caption_streams})
