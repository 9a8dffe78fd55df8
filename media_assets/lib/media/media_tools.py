"""Thin wrappers around the ffmpeg and ffprobe executables.

Inputs are always passed as `file:<absolute path>` with `-protocol_whitelist file`, so a file
name can never be read as an option, a URL or a playlist that reaches elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import ffmpeg

from media_assets.lib.core.errors import MediaToolError

SAFE_INPUT = ["-protocol_whitelist", "file"]


def ffmpeg_binary() -> str:
    return os.environ.get("MEDIA_LAKE_FFMPEG") or shutil.which("ffmpeg") or "ffmpeg"


def ffprobe_binary() -> str:
    return os.environ.get("MEDIA_LAKE_FFPROBE") or shutil.which("ffprobe") or "ffprobe"


def file_url(path: Path | str) -> str:
    """An input spec ffmpeg reads only as a local file, whatever characters the name holds."""
    return "file:" + str(Path(path).resolve())


def probe(path: Path) -> dict:
    """ffprobe's JSON (format, streams, chapters) through ffmpeg-python."""
    try:
        return ffmpeg.probe(
            file_url(path),
            cmd=ffprobe_binary(),
            v="error",
            show_chapters=None,
            protocol_whitelist="file",
        )
    except ffmpeg.Error as exc:
        stderr = (exc.stderr or b"").decode("utf-8", "replace")
        raise MediaToolError([ffprobe_binary(), str(path)], 1, stderr) from exc


def run_ffmpeg(args: list[str], timeout: float | None = None) -> str:
    """Run ffmpeg with `args` (after the binary) and return its stderr; raise on failure."""
    command = [ffmpeg_binary(), "-nostdin", "-hide_banner", *args]
    done = subprocess.run(command, capture_output=True, timeout=timeout)
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise MediaToolError(command, done.returncode, stderr)
    return stderr


def decoded_audio_seconds(path: Path, audio_index: int = 0, timeout: float | None = None) -> float:
    """Decode one audio stream completely and return how many seconds of it actually decode.

    ffprobe's duration comes from headers and bitrate guesses; this is the real figure for a
    truncated file, and 0.0 when nothing decodes.
    """
    stderr_and_progress = subprocess.run(
        [
            ffmpeg_binary(),
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            *SAFE_INPUT,
            "-i",
            file_url(path),
            "-map",
            f"0:a:{audio_index}",
            "-vn",
            "-sn",
            "-dn",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-nostats",
            "-",
        ],
        capture_output=True,
        timeout=timeout,
    )
    out_times = [
        line.split("=", 1)[1]
        for line in stderr_and_progress.stdout.decode("ascii", "replace").splitlines()
        if line.startswith("out_time_us=")
    ]
    if stderr_and_progress.returncode != 0 or not out_times or out_times[-1] == "N/A":
        return 0.0
    return max(int(out_times[-1]), 0) / 1_000_000
