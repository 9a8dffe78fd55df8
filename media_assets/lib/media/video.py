"""H.264/MP4 video normalization with a fixed closed GOP, and checks of the result."""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from media_assets.lib.core.settings import knob
from media_assets.lib.media.media_tools import SAFE_INPUT, ffprobe_binary, file_url, run_ffmpeg


@dataclass(frozen=True)
class VideoSettings:
    gop_seconds: float = knob(2.0, "gop_seconds", "keyframe interval of normalized video")
    crf: int = knob(23, "video_crf", "x264 constant rate factor")
    preset: str = knob("veryfast", "video_preset", "x264 preset")
    audio_bitrate: str = knob("160k", "video_audio_bitrate", "AAC bitrate in the MP4")
    # x264's output depends on its thread count (frame threads see fewer finished reference rows), and
    # its default count follows the machine's cores: a fixed count gives the same bytes everywhere.
    encoder_threads: int = knob(4, "video_encoder_threads", "x264 threads; fixed, because its output depends on it")


def frame_rate(avg_frame_rate: str | None, fallback: float = 25.0) -> float:
    try:
        rate = float(Fraction(avg_frame_rate or "0/1"))
    except (ValueError, ZeroDivisionError):
        return fallback
    return rate if rate > 0 else fallback


def normalize_video(src: Path, normalized_wav: Path, dst: Path, fps: float, settings: VideoSettings) -> None:
    """Encode the first video stream as H.264 with a keyframe exactly every `gop_seconds`
    (scene-cut keyframes off, closed GOPs) and mux it with the normalized audio as AAC.

    Byte-identical for the same inputs on any machine and under any load: x264's thread count and
    its lookahead threads are pinned, its threaded lookahead is off (with it, 6 of 60 encodes under
    an oversubscribed CPU differed), pixel-format conversion uses swscale's bit-exact C path instead of
    CPU-specific SIMD, and the muxer writes no version, date or encoder string."""
    gop_frames = max(1, round(fps * settings.gop_seconds))
    run_ffmpeg(
        [
            "-v",
            "error",
            "-sws_flags",
            "bicubic+accurate_rnd+bitexact",
            *SAFE_INPUT,
            "-i",
            file_url(src),
            *SAFE_INPUT,
            "-i",
            file_url(normalized_wav),
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "libx264",
            "-preset",
            settings.preset,
            "-crf",
            str(settings.crf),
            "-threads:v",
            str(settings.encoder_threads),
            "-x264-params",
            "lookahead-threads=1:sliced-threads=0:sync-lookahead=0",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(gop_frames),
            "-keyint_min",
            str(gop_frames),
            "-sc_threshold",
            "0",
            "-flags:v",
            "+cgop+bitexact",
            "-force_key_frames",
            f"expr:gte(t,n_forced*{settings.gop_seconds})",
            "-c:a",
            "aac",
            "-b:a",
            settings.audio_bitrate,
            "-flags:a",
            "+bitexact",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-fflags",
            "+bitexact",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            "-y",
            file_url(dst),
        ],
        task="h264_encode",
    )


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the video keyframes, from packet flags (no decoding needed)."""
    done = subprocess.run(
        [
            ffprobe_binary(),
            "-v",
            "error",
            *SAFE_INPUT,
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "json",
            file_url(path),
        ],
        capture_output=True,
        check=True,
    )
    packets = json.loads(done.stdout).get("packets", [])
    return sorted(
        round(float(p["pts_time"]), 6)
        for p in packets
        if "K" in p.get("flags", "") and p.get("pts_time") not in (None, "N/A")
    )


def top_level_atoms(path: Path) -> list[str]:
    """The order of an MP4's top-level boxes (to verify faststart: moov before mdat)."""
    atoms = []
    with open(path, "rb") as handle:
        while header := handle.read(8):
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", handle.read(8))[0]
                handle.seek(size - 16, 1)
            elif size == 0:
                atoms.append(kind.decode("latin-1"))
                break
            else:
                handle.seek(size - 8, 1)
            atoms.append(kind.decode("latin-1"))
    return atoms


def is_faststart(path: Path) -> bool:
    atoms = top_level_atoms(path)
    return "moov" in atoms and "mdat" in atoms and atoms.index("moov") < atoms.index("mdat")
