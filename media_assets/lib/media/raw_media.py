"""The raw_media stage: `raw_media` below; its docstring is the description the UI shows."""

from __future__ import annotations

import dataclasses

from media_assets.lib.core.lake import LakeStore, raw_key
from media_assets.lib.core.stage import StageResult, StageRun, stage
from media_assets.lib.media.ingest import read_registration
from media_assets.lib.media.media_contract import InspectedMedia, first_stream, inspect_media
from media_assets.lib.media.settings import MediaSettings


def episode_row(episode_id: str, registration: dict, media: InspectedMedia) -> dict:
    probe = media.probe
    audio = first_stream(probe["streams"], "audio")
    picture = first_stream(probe["streams"], "video")
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


@stage(
    upstream=(),
    code_version="1",
    compute_class="cpu-metadata",
    kinds=("ffmpeg", "parquet"),
    tables=("episodes",),
)
def raw_media(lake: LakeStore, episode_id: str, settings: MediaSettings) -> StageResult:
    """Original bytes re-verified against their registered SHA-256, probed with ffprobe and held to the media
    contract (decodable audio, known container, duration bounds); the JSON keeps the ffprobe summary and
    the decoded duration."""
    registration = read_registration(lake, episode_id)
    limits = settings.limits
    run = StageRun(lake, raw_media, episode_id, dataclasses.asdict(limits), {"bytes": registration["sha256"]})
    if done := run.up_to_date():
        return done
    with lake.local_copy(raw_key(episode_id)) as original:
        media = inspect_media(original, limits, expected_sha256=registration["sha256"])
    run.put_table("episodes", [episode_row(episode_id, registration, media)])
    return run.finish(
        {
            "sha256": media.sha256,
            "size_bytes": media.size_bytes,
            "decoded_duration_s": media.decoded_audio_seconds,
            "probe": media.probe,
        }
    )
