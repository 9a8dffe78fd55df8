"""The normalized_video stage: `normalized_video` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

from media_assets.lib.core.lake import LakeStore, media_key, raw_key
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.media import video
from media_assets.lib.media.media_contract import first_stream
from media_assets.lib.media.quality import FIXED_GOP
from media_assets.lib.media.settings import MediaSettings


@stage(
    upstream=("raw_media", "normalized_audio"),
    code_version="3",  # 3: x264 without threaded lookahead (deterministic under load)
    compute_class="cpu-normalization",
    kinds=("ffmpeg", "parquet"),
    tables=("video_renditions",),
    checks=(FIXED_GOP,),
)
def normalized_video(lake: LakeStore, episode_id: str, settings: MediaSettings) -> StageResult:
    """H.264 (libx264)/AAC MP4 with a closed GOP of fixed length (scene-cut keyframes off) and +faststart.
    Audio-only episodes succeed as skipped."""
    run = StageRun(lake, normalized_video, episode_id, dataclasses.asdict(settings.video))
    if done := run.up_to_date():
        return done
    raw, audio_doc = run.upstream["raw_media"], run.upstream["normalized_audio"]
    picture = first_stream(raw["probe"]["streams"], "video")
    if picture is None:
        return run.finish({"skipped": True})
    fps = video.frame_rate(picture.get("avg_frame_rate"))
    with (
        lake.local_copy(raw_key(episode_id)) as original,
        lake.local_copy(audio_doc["outputs"]["audio"]["key"]) as wav,
        lake.scratch_dir() as tmp,
    ):
        mp4 = tmp / "video.mp4"
        video.normalize_video(original, wav, mp4, fps, settings.video)
        keyframes = video.keyframe_times(mp4)
        gaps = [b - a for a, b in zip(keyframes, keyframes[1:])]
        rendition = {
            "episode_id": episode_id,
            "codec": "h264",
            "width": picture["width"],
            "height": picture["height"],
            "frame_rate": round(fps, 6),
            "gop_seconds": settings.video.gop_seconds,
            "keyframe_count": len(keyframes),
            "max_keyframe_gap_s": round(max(gaps, default=0.0), 6),
            "audio_codec": "aac",
            "duration_s": raw["decoded_duration_s"],
            "faststart": video.is_faststart(mp4),
            "size_bytes": mp4.stat().st_size,
        }
        run.put_file("video", media_key("normalized_video", episode_id, "video.mp4"), mp4)
    run.put_table("video_renditions", [rendition])
    return run.finish({"skipped": False, "rendition": rendition, "keyframe_times": keyframes})
