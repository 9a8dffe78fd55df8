"""Descriptive metadata: ID3 frames (mutagen), container/stream tags and EXIF-style fields
(ffprobe), and embedded text subtitle tracks turned into timed cues."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import mutagen
from mutagen.id3 import ID3, ID3NoHeaderError

from media_assets.lib.media.media_tools import SAFE_INPUT, file_url, run_ffmpeg

TEXT_SUBTITLE_CODECS = frozenset({"subrip", "srt", "mov_text", "webvtt", "ass", "ssa", "text"})

_EXIF_TAGS = {
    "creation_time": ("creation_time", "com.apple.quicktime.creationdate", "date"),
    "make": ("com.apple.quicktime.make", "make"),
    "model": ("com.apple.quicktime.model", "model"),
    "software": ("com.apple.quicktime.software", "encoder_software"),
    "location": ("com.apple.quicktime.location.ISO6709", "location", "location-eng"),
}
_ISO6709 = re.compile(r"^([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")
_SRT_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{3})")
_MARKUP = re.compile(r"<[^>]+>|\{[^}]*\}")


def id3_frames(path: Path) -> dict[str, str]:
    """ID3 frames as text, keyed by frame id (plus description for TXXX/COMM); {} without a tag."""
    try:
        tag = ID3(path)
    except (ID3NoHeaderError, mutagen.MutagenError):
        return {}
    frames = {}
    for key, frame in sorted(tag.items()):
        if frame.FrameID == "APIC":
            frames[key] = f"{frame.mime}, {len(frame.data)} bytes"
        else:
            frames[key] = str(frame)
    return frames


def exif_fields(container_tags: dict[str, str], stream_tags: list[dict[str, str]]) -> dict:
    """Creation time, device and location in the forms cameras and phones write them."""
    merged = {k.lower(): v for tags in [*stream_tags, container_tags] for k, v in tags.items()}
    fields: dict = {}
    for name, candidates in _EXIF_TAGS.items():
        for candidate in candidates:
            if merged.get(candidate.lower()):
                fields[name] = merged[candidate.lower()]
                break
    if match := _ISO6709.match(fields.get("location", "")):
        latitude, longitude = float(match.group(1)), float(match.group(2))
        if -90 <= latitude <= 90 and -180 <= longitude <= 180:
            fields["latitude"], fields["longitude"] = latitude, longitude
    return fields


def _seconds(stamp: str) -> float:
    hours, minutes, seconds, millis = (int(x) for x in _SRT_TIME.match(stamp).groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) cues from SubRip text, markup stripped, empty cues dropped."""
    cues = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        lines = block.strip().splitlines()
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        start, _, end = lines[timing].partition("-->")
        if not (_SRT_TIME.search(start) and _SRT_TIME.search(end)):
            continue
        body = " ".join(_MARKUP.sub("", line).strip() for line in lines[timing + 1 :]).strip()
        if body:
            cues.append((_seconds(start.strip()), _seconds(end.strip()), body))
    return cues


def extract_subtitle_cues(path: Path, stream_index: int) -> list[tuple[float, float, str]]:
    """Convert one text subtitle stream to SubRip with ffmpeg and parse its cues."""
    with tempfile.TemporaryDirectory(prefix="media-lake-subs-") as folder:
        out = Path(folder) / "cues.srt"
        run_ffmpeg(
            [
                "-v",
                "error",
                *SAFE_INPUT,
                "-i",
                file_url(path),
                "-map",
                f"0:{stream_index}",
                "-c:s",
                "srt",
                "-f",
                "srt",
                "-y",
                file_url(out),
            ]
        )
        return parse_srt(out.read_text(encoding="utf-8", errors="replace"))
