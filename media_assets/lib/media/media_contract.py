"""The media contract: what an input must be before any further compute is spent on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.core.errors import MediaToolError, RejectedMedia
from media_assets.lib.core.identity import sha256_file, verify_checksum
from media_assets.lib.core.settings import knob
from media_assets.lib.media import media_tools

# ffprobe `format_name` values of containers the pipeline accepts.
KNOWN_CONTAINERS = frozenset(
    {
        "wav",
        "w64",
        "mp3",
        "flac",
        "ogg",
        "aac",
        "aiff",
        "caf",
        "matroska,webm",
        "mov,mp4,m4a,3gp,3g2,mj2",
        "mpegts",
        "asf",
        "avi",
        "opus",
    }
)


@dataclass(frozen=True)
class MediaLimits:
    min_seconds: float = knob(1.0, "min_seconds", "shortest accepted input (decoded seconds)")
    max_seconds: float = knob(6 * 3600.0, "max_seconds", "longest accepted input (decoded seconds)")
    max_bytes: int = knob(64 * 2**30, "max_bytes", "largest accepted input file")


@dataclass(frozen=True)
class InspectedMedia:
    sha256: str
    size_bytes: int
    probe: dict
    decoded_audio_seconds: float

    @property
    def has_video(self) -> bool:
        return any(s["codec_type"] == "video" and not s["attached_pic"] for s in self.probe["streams"])


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # drop NaN


def summarize_probe(raw: dict) -> dict:
    """Reduce ffprobe's JSON to the stable fields the lake keeps (see schemas/raw_media)."""
    fmt = raw.get("format", {})
    streams = []
    for stream in raw.get("streams", []):
        tags = {str(k): str(v) for k, v in (stream.get("tags") or {}).items()}
        streams.append(
            {
                "index": int(stream.get("index", len(streams))),
                "codec_type": str(stream.get("codec_type", "unknown")),
                "codec_name": str(stream.get("codec_name", "unknown")),
                "sample_rate": int(stream["sample_rate"]) if stream.get("sample_rate") else None,
                "channels": int(stream["channels"]) if stream.get("channels") else None,
                "channel_layout": stream.get("channel_layout"),
                "width": stream.get("width"),
                "height": stream.get("height"),
                "avg_frame_rate": stream.get("avg_frame_rate"),
                "duration_s": _number(stream.get("duration")),
                "bit_rate": int(stream["bit_rate"]) if str(stream.get("bit_rate", "")).isdigit() else None,
                "language": tags.get("language"),
                "attached_pic": bool((stream.get("disposition") or {}).get("attached_pic", 0)),
                "tags": tags,
            }
        )
    chapters = [
        {
            "start_s": _number(ch.get("start_time")) or 0.0,
            "end_s": _number(ch.get("end_time")) or 0.0,
            "title": str((ch.get("tags") or {}).get("title", "")),
        }
        for ch in raw.get("chapters", [])
    ]
    return {
        "format_name": str(fmt.get("format_name", "unknown")),
        "format_long_name": str(fmt.get("format_long_name", "")),
        "duration_s": _number(fmt.get("duration")),
        "bit_rate": int(fmt["bit_rate"]) if str(fmt.get("bit_rate", "")).isdigit() else None,
        "tags": {str(k): str(v) for k, v in (fmt.get("tags") or {}).items()},
        "streams": streams,
        "chapters": chapters,
    }


def first_stream(streams: list[dict], kind: str) -> dict | None:
    """The first audio or video stream of a probe summary; cover art is not video."""
    return next((s for s in streams if s["codec_type"] == kind and not s.get("attached_pic")), None)


def inspect_media(path: Path, limits: MediaLimits, expected_sha256: str | None = None) -> InspectedMedia:
    """Hash, probe and decode `path`; raise RejectedMedia with a specific reason on any violation.

    Checks run cheapest first, so a bad file costs as little as possible.
    """
    size = path.stat().st_size
    if size == 0:
        raise RejectedMedia("empty_file", "the file is empty (0 bytes)")
    if size > limits.max_bytes:
        raise RejectedMedia("too_large", f"the file has {size} bytes; the limit is {limits.max_bytes}")
    sha256 = sha256_file(path)
    verify_checksum(sha256, expected_sha256, "the file")
    try:
        probe = summarize_probe(media_tools.probe(path))
    except MediaToolError as exc:
        raise RejectedMedia("unreadable_media", f"ffprobe cannot read the file as media: {exc}") from exc
    if probe["format_name"] not in KNOWN_CONTAINERS:
        raise RejectedMedia(
            "unknown_container",
            f"container {probe['format_name']!r} is not one of the accepted containers",
        )
    if not any(s["codec_type"] == "audio" for s in probe["streams"]):
        kinds = sorted({s["codec_type"] for s in probe["streams"]}) or ["none"]
        raise RejectedMedia("no_audio_stream", f"no audio stream (streams: {', '.join(kinds)})")
    header_seconds = probe["duration_s"] or 0.0
    if header_seconds > limits.max_seconds * 1.05:
        raise RejectedMedia(
            "too_long", f"duration {header_seconds:.1f} s exceeds the maximum {limits.max_seconds:.0f} s"
        )
    decoded = media_tools.decoded_audio_seconds(path)
    if decoded <= 0.0:
        raise RejectedMedia("undecodable_audio", "ffmpeg decodes no audio from the first audio stream")
    if decoded < limits.min_seconds:
        raise RejectedMedia(
            "too_short", f"only {decoded:.2f} s of audio decode; the minimum is {limits.min_seconds:.1f} s"
        )
    if decoded > limits.max_seconds:
        raise RejectedMedia("too_long", f"{decoded:.1f} s of audio decode; the maximum is {limits.max_seconds:.0f} s")
    return InspectedMedia(sha256=sha256, size_bytes=size, probe=probe, decoded_audio_seconds=round(decoded, 6))
