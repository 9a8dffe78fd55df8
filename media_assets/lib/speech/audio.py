"""The audio both speech models hear, read one way: 16 kHz mono float32 decoded as a stream
(PyAV, exactly as faster-whisper's own `decode_audio`), in windows cut at quiet points.

A file is split into `window_count` windows of equal nominal length (so no stub of a few seconds is
left at the end); window k ends at the middle of the quietest 100 ms of the `search_seconds` before
k/count of the file, the latest of equally quiet ones (digital silence), so that a cut falls in a
pause and windows keep about their length. Memory holds about one window at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import soundfile

SAMPLE_RATE = 16_000  # what Whisper, both VADs and both diarization models take
CUT_SEARCH_SECONDS = 30.0
FRAME = SAMPLE_RATE // 10  # 100 ms


def decode(path: Path) -> Iterator[np.ndarray]:
    """Decoded, downmixed and resampled blocks of the first audio stream (as faster-whisper's decode_audio)."""
    # s16 as faster-whisper: a float output would also change swresample's stereo-to-mono gains (x1.41).
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(str(path), metadata_errors="ignore") as container:
        for frame in itertools.chain(container.decode(audio=0), [None]):  # None flushes the resampler
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """RMS of consecutive 100 ms frames in dBFS (floored at -120)."""
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    return 20 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-6))


def quiet_cut(audio: np.ndarray, end: int, search: int) -> int:
    """Where a window of `audio` that should end at sample `end` ends: the middle of the quietest
    100 ms frame of the `search` samples before `end` (at most half the window); of equally quiet
    ones, the latest."""
    search = min(search, end // 2)
    if search < FRAME:  # a window too short to hold a whole frame ends where it should
        return end
    backwards = frame_levels(audio[end - search : end][::-1])
    return end - 1 - (int(np.argmin(backwards)) * FRAME + FRAME // 2)


def window_count(path: Path, window_seconds: float) -> int:
    """How many windows of at most about `window_seconds` the file is read in."""
    if window_seconds <= 0:
        raise ValueError(f"window_seconds must be positive, not {window_seconds}")
    return max(1, math.ceil(soundfile.info(str(path)).duration / window_seconds))


def windows(path: Path, count: int, search_seconds: float = CUT_SEARCH_SECONDS) -> Iterator[tuple[float, np.ndarray]]:
    """(start time, samples) of `count` consecutive windows of the file (see the module docstring);
    the last holds the rest of the file, so there is always at least one."""
    nominal = soundfile.info(str(path)).duration * SAMPLE_RATE / count
    ends = [round(k * nominal) for k in range(1, count)]
    search = round(search_seconds * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    held = start = 0
    for block in decode(path):
        pending.append(block)
        held += len(block)
        while ends and start + held >= ends[0]:
            audio = np.concatenate(pending)
            cut = quiet_cut(audio, ends.pop(0) - start, search)
            yield start / SAMPLE_RATE, audio[:cut]
            start += cut
            pending, held = [audio[cut:]], len(audio) - cut
    yield start / SAMPLE_RATE, np.concatenate(pending) if pending else np.zeros(0, dtype=np.float32)
