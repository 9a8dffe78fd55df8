"""Thin wrappers around the ffmpeg and ffprobe executables.

Inputs are always passed as `file:<absolute path>` with `-protocol_whitelist file`, so a file
name can never be read as an option, a URL or a playlist that reaches elsewhere.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE

import ffmpeg

from media_assets.lib.core.errors import MediaToolError

SAFE_INPUT = ["-protocol_whitelist", "file"]
LOG = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Progress:
    """One report of ffmpeg's `-progress` output: media seconds written so far, the speed (media
    seconds per wall second; None before ffmpeg knows it) and whether this is the last report."""

    out_seconds: float
    speed: float | None
    ended: bool


# Who hears the progress of the ffmpeg calls made in this context (a Dagster step sets it:
# observability/ffmpeg_progress.py); each report comes with the call's `task`.
PROGRESS_LISTENER: ContextVar[Callable[[str, Progress], None] | None] = ContextVar("ffmpeg_progress", default=None)
PROGRESS_PERIOD_SECONDS = 1


def parse_progress(lines: Iterable[str]) -> Iterator[Progress]:
    """The reports in ffmpeg's `-progress` key=value lines; each ends with a `progress=` line."""
    block: dict[str, str] = {}
    for line in lines:
        key, _, value = line.strip().partition("=")
        block[key] = value
        if key == "progress":
            out_us, speed = block.get("out_time_us", "N/A"), block.get("speed", "N/A").rstrip("x").strip()
            yield Progress(
                out_seconds=max(int(out_us), 0) / 1_000_000 if out_us.lstrip("-").isdigit() else 0.0,
                speed=float(speed) if speed not in ("N/A", "") else None,
                ended=value == "end",
            )
            block = {}


def run_ffmpeg(args: list[str], task: str | None = None) -> str:
    """Run ffmpeg with `args` (after the binary) and return its stderr; raise on failure. A call
    with a `task` name reports its progress to the context's PROGRESS_LISTENER, if any."""
    command = [ffmpeg_binary(), "-nostdin", "-hide_banner", *args]
    listener = PROGRESS_LISTENER.get()
    if task is None or listener is None:
        done = subprocess.run(command, capture_output=True)
        returncode, stderr = done.returncode, done.stderr.decode("utf-8", "replace")
    else:
        returncode, stderr = _run_reporting(command, lambda report: listener(task, report))
    if returncode != 0:
        raise MediaToolError(command, returncode, stderr)
    return stderr


def _run_reporting(command: list[str], report: Callable[[Progress], None] | None) -> tuple[int, str]:
    """Run ffmpeg with `-progress` on its stdout, calling `report` with each report as it comes;
    stderr is read alongside, so neither pipe fills. (return code, stderr)

    Reporting is a side show: a report that raises ends the reporting, not the call. Anything
    that stops the reading (a run terminated) kills ffmpeg, as subprocess.run would."""
    progress_args = ["-progress", "pipe:1", "-stats_period", str(PROGRESS_PERIOD_SECONDS)]
    with subprocess.Popen([*command[:1], *progress_args, *command[1:]], stdout=PIPE, stderr=PIPE) as process:
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()), daemon=True)
        reader.start()
        try:
            for progress in parse_progress(line.decode("ascii", "replace") for line in process.stdout):
                if report is not None:
                    try:
                        report(progress)
                    except Exception:  # noqa: BLE001
                        LOG.warning("ffmpeg progress: reporting stopped", exc_info=True)
                        report = None
            returncode = process.wait()
        except BaseException:
            process.kill()
            raise
        finally:
            reader.join()
    return returncode, b"".join(stderr).decode("utf-8", "replace")


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
    reports = list(parse_progress(stderr_and_progress.stdout.decode("ascii", "replace").splitlines()))
    if stderr_and_progress.returncode != 0 or not reports:
        return 0.0
    return reports[-1].out_seconds
