"""Quality gates of the media stages: loudness as an independent meter hears it, and a fixed GOP.

The meter is this module's own streaming ITU-R BS.1770-4 implementation (K-weighting, 400 ms
gated blocks, 4x-oversampled true peak), not ffmpeg's loudnorm that produced the file: a bug in
how the stage drives loudnorm cannot hide from it, and memory stays flat for hours of audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soundfile
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from media_assets.lib.core.lake import LakeStore
from media_assets.lib.core.quality import CheckOutcome, QualityCheck
from media_assets.lib.core.settings import knob

BLOCK_SECONDS = 0.4  # BS.1770 gating block
STEP_SECONDS = 0.1  # 75 % overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLING = 4  # true peak: 4x oversampling, as BS.1770-4 Annex 2
READ_SECONDS = 30.0  # audio held at a time


@dataclass(frozen=True)
class MediaQuality:
    # EBU R128 s1 allows +-1 LU where exact normalization is impractical
    loudness_tolerance_lu: float = knob(1.0, "loudness_tolerance_lu", "loudness gate: allowed distance from target")
    # meters differ by tenths of a dB in their interpolation
    true_peak_margin_db: float = knob(0.5, "true_peak_margin_db", "loudness gate: allowed excess over the ceiling")
    gop_tolerance_frames: float = knob(1.0, "gop_tolerance_frames", "GOP gate: allowed keyframe drift in frames")


@dataclass(frozen=True)
class Loudness:
    integrated: float | None  # LUFS; None when every block is below the absolute gate
    true_peak: float | None  # dBTP; None for digital silence


def k_weighting(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two BS.1770 pre-filter stages (high shelf, then high pass) for any sample rate."""
    k = math.tan(math.pi * 1681.974450955533 / rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (
        np.array([(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]),
        np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]),
    )
    k = math.tan(math.pi * 38.13547087602444 / rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    return [shelf, high_pass]


def gated_loudness(step_energy: np.ndarray, steps_per_block: int) -> float | None:
    """Integrated loudness from the channel-summed mean square of each 100 ms step."""
    if len(step_energy) < steps_per_block:
        return None
    kernel = np.ones(steps_per_block) / steps_per_block
    blocks = np.convolve(step_energy, kernel, mode="valid")
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(blocks)
    above_absolute = blocks[block_lufs > ABSOLUTE_GATE_LUFS]
    if not len(above_absolute):
        return None
    relative_gate = -0.691 + 10 * math.log10(above_absolute.mean()) + RELATIVE_GATE_LU
    gated = blocks[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative_gate)]
    return -0.691 + 10 * math.log10(gated.mean())


def meter(path) -> Loudness:
    """Integrated loudness and true peak of a PCM file, read in bounded pieces.

    Pass 1 K-weights and gates every 100 ms step and notes each step's sample peak. Pass 2
    oversamples only the steps that could hold the true peak: interpolation can raise a step's
    level at most `_OVERSHOOT` times its neighbourhood's sample peak, and the true peak is at least
    the file's sample peak, so quieter steps are skipped (most of a programme; all of a steady tone
    is still read).
    """
    info = soundfile.info(str(path))
    rate, step = info.samplerate, round(info.samplerate * STEP_SECONDS)
    sos = np.vstack([np.concatenate([b, a]) for b, a in k_weighting(rate)])
    state = np.zeros((len(sos), info.channels, 2))
    read_frames = step * round(READ_SECONDS / STEP_SECONDS)
    energies, peaks = [], []
    for piece in soundfile.blocks(str(path), blocksize=read_frames, dtype="float64", always_2d=True):
        # one channel per row: filtering along contiguous samples is about 30 % faster than across
        weighted, state = signal.sosfilt(sos, np.ascontiguousarray(piece.T), axis=-1, zi=state)
        whole = piece.shape[0] // step * step  # a trailing partial step is dropped, as BS.1770 gates whole blocks
        energies.append((weighted[:, :whole] ** 2).reshape(info.channels, -1, step).mean(axis=2).sum(axis=0))
        peaks.append(step_peaks(piece, step))
    step_energy = np.concatenate(energies) if energies else np.zeros(0)
    integrated = gated_loudness(step_energy, round(BLOCK_SECONDS / STEP_SECONDS))
    peak = _true_peak(path, np.concatenate(peaks) if peaks else np.zeros(0), step, read_frames)
    return Loudness(integrated, 20 * math.log10(peak) if peak > 0 else None)


def step_peaks(samples: np.ndarray, step: int) -> np.ndarray:
    """The sample peak (highest absolute value, any channel) of each `step` frames of `samples`,
    a trailing partial step included. Maximum and minimum of each step's contiguous frames: about
    20x faster than a per-frame np.abs(...).max(axis=1), and exactly the same figure."""
    whole = len(samples) // step * step
    rows = samples[:whole].reshape(-1, step * samples.shape[1])
    peaks = np.maximum(rows.max(axis=1), -rows.min(axis=1))
    if whole < len(samples):
        tail = samples[whole:]
        peaks = np.append(peaks, max(tail.max(), -tail.min()))
    return peaks


# BS.1770-4 Annex 2: 4x oversampling through a low-pass interpolator (here scipy's resample_poly design).
_INTERPOLATOR = (signal.firwin(20 * OVERSAMPLING + 1, 1 / OVERSAMPLING, window=("kaiser", 5.0)) * OVERSAMPLING).astype(
    np.float32
)
_DELAY = (len(_INTERPOLATOR) - 1) // 2  # output samples
_CONTEXT = _DELAY // OVERSAMPLING + 1  # input samples on each side that reach an output
_OVERSHOOT = max(np.abs(_INTERPOLATOR[phase::OVERSAMPLING]).sum() for phase in range(OVERSAMPLING))
_BLOCK = 64  # input samples whose outputs one row of the product holds
_ROWS = 1024  # rows multiplied at a time: a 1 MB product stays in cache for its max and min (512-2048 alike)


def _interpolation_matrix() -> np.ndarray:
    """Upsampling as a matrix product: a window of `_BLOCK` input samples with `_CONTEXT` on each
    side, times this matrix, gives their `OVERSAMPLING * _BLOCK` interpolated outputs (output m of
    the block is input position m / OVERSAMPLING). float64, so the product's summation order, which
    BLAS picks per CPU, cannot move the peak by anything a rounded figure shows."""
    rows = np.arange(_BLOCK + 2 * _CONTEXT)[:, None] - _CONTEXT  # input sample, relative to the block
    tap = _DELAY + np.arange(OVERSAMPLING * _BLOCK)[None, :] - OVERSAMPLING * rows
    inside = (tap >= 0) & (tap < len(_INTERPOLATOR))
    return np.where(inside, _INTERPOLATOR.astype(np.float64)[np.clip(tap, 0, len(_INTERPOLATOR) - 1)], 0.0)


_MATRIX = _interpolation_matrix()
_MATRIX_32 = _MATRIX.astype(np.float32)
# Each output sums 21 products, so float32 rounding moves it by under 3e-6 of the peak: rows within
# this margin of the highest float32 row peak are multiplied again in float64, and the figure is the
# float64 one.
_SCREEN_MARGIN = 1e-4


def oversampled_peak(samples: np.ndarray, first: int, stop: int) -> float:
    """The highest absolute value of the 4x-oversampled signal between input samples `first` and
    `stop` of `samples` (which holds `_CONTEXT` samples of context around them where the file has;
    beyond the file is silence). The same figure as filtering with `_INTERPOLATOR` (scipy's
    upfirdn), computed as blocked matrix products, which BLAS does several times faster: every row
    in float32, then the few rows that can hold the peak again in float64."""
    if stop <= first:
        return 0.0
    blocks = -(-(stop - first) // _BLOCK)
    padded = np.zeros((blocks * _BLOCK + 2 * _CONTEXT, samples.shape[1]), dtype=np.float32)
    lo, hi = max(0, first - _CONTEXT), min(len(samples), stop + _CONTEXT)
    padded[lo - first + _CONTEXT : hi - first + _CONTEXT] = samples[lo:hi]
    last_row_outputs = OVERSAMPLING * (stop - first - _BLOCK * (blocks - 1))  # the rest lies beyond `stop`
    windows = [sliding_window_view(channel, len(_MATRIX))[::_BLOCK] for channel in padded.T]
    row_peaks = np.empty((len(windows), blocks), dtype=np.float32)
    for channel, rows in enumerate(windows):
        for row in range(0, blocks, _ROWS):
            out = np.ascontiguousarray(rows[row : row + _ROWS]) @ _MATRIX_32
            if row + len(out) == blocks:
                out[-1, last_row_outputs:] = 0
            row_peaks[channel, row : row + len(out)] = np.maximum(out.max(axis=1), -out.min(axis=1))
    peak = 0.0
    for channel, rows in enumerate(windows):
        near = np.flatnonzero(row_peaks[channel] >= row_peaks.max() * (1 - _SCREEN_MARGIN))
        if len(near):
            out = rows[near].astype(np.float64) @ _MATRIX
            if near[-1] == blocks - 1:
                out[-1, last_row_outputs:] = 0
            peak = max(peak, float(out.max()), float(-out.min()))
    return peak


def _true_peak(path, step_peaks: np.ndarray, step: int, read_frames: int) -> float:
    if not len(step_peaks) or step_peaks.max() == 0:
        return 0.0
    neighbourhood = np.maximum.reduce([step_peaks, np.roll(step_peaks, 1), np.roll(step_peaks, -1)])
    candidates = np.flatnonzero(neighbourhood * _OVERSHOOT >= step_peaks.max())
    peak = 0.0
    with soundfile.SoundFile(str(path)) as f:
        for run in np.split(candidates, np.flatnonzero(np.diff(candidates) > 1) + 1):
            for first in range(run[0] * step, min((run[-1] + 1) * step, f.frames), read_frames):
                stop = min(first + read_frames, (run[-1] + 1) * step, f.frames)
                start = max(0, first - _CONTEXT)
                f.seek(start)
                samples = f.read(min(f.frames, stop + _CONTEXT) - start, dtype="float32", always_2d=True)
                peak = max(peak, oversampled_peak(samples, first - start, stop - start))
    return peak


def check_loudness(lake: LakeStore, document: dict, settings) -> CheckOutcome:
    target, limits = settings.loudness, settings.quality
    with lake.local_copy(document["outputs"]["audio"]["key"]) as wav:
        measured = meter(wav)
    figures = {
        "integrated_lufs": None if measured.integrated is None else round(measured.integrated, 2),
        "true_peak_dbtp": None if measured.true_peak is None else round(measured.true_peak, 2),
        "target_lufs": target.integrated,
        "tolerance_lu": limits.loudness_tolerance_lu,
        "true_peak_ceiling_dbtp": target.true_peak,
        "true_peak_margin_db": limits.true_peak_margin_db,
        "meter": "media_assets BS.1770-4 (K-weighted, gated, 4x true peak)",
    }
    if document["loudness"]["input_i"] is None:
        silent = measured.integrated is None
        return CheckOutcome(silent, "silent input stays silent" if silent else "silent input became audible", figures)
    if measured.integrated is None:
        return CheckOutcome(False, "output is silent although the input was not", figures)
    off_by = measured.integrated - target.integrated
    too_hot = measured.true_peak - (target.true_peak + limits.true_peak_margin_db)
    if abs(off_by) > limits.loudness_tolerance_lu:
        return CheckOutcome(False, f"integrated {measured.integrated:.2f} LUFS is {off_by:+.2f} LU off target", figures)
    if too_hot > 0:
        return CheckOutcome(False, f"true peak {measured.true_peak:.2f} dBTP is over the ceiling", figures)
    return CheckOutcome(
        True, f"{measured.integrated:.2f} LUFS ({off_by:+.2f} LU), true peak {measured.true_peak:.2f} dBTP", figures
    )


def check_gop(lake: LakeStore, document: dict, settings) -> CheckOutcome:
    if document["skipped"]:
        return CheckOutcome(True, "audio-only episode: no video to check")
    rendition, times = document["rendition"], document["keyframe_times"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    allowed = settings.quality.gop_tolerance_frames / rendition["frame_rate"]
    # the last GOP ends with the video and may be shorter
    off = [g for g in gaps[:-1] if abs(g - rendition["gop_seconds"]) > allowed] + [
        g for g in gaps[-1:] if g > rendition["gop_seconds"] + allowed
    ]
    figures = {
        "gop_seconds": rendition["gop_seconds"],
        "keyframes": len(times),
        "min_gap_s": round(min(gaps), 6) if gaps else None,
        "max_gap_s": round(max(gaps), 6) if gaps else None,
        "tolerance_s": round(allowed, 6),
        "first_keyframe_s": times[0] if times else None,
    }
    if not times or times[0] > allowed:
        return CheckOutcome(False, "the video does not start on a keyframe", figures)
    if off:
        return CheckOutcome(
            False, f"{len(off)} keyframe gap(s) differ from the {rendition['gop_seconds']} s GOP", figures
        )
    return CheckOutcome(True, f"{len(times)} keyframes, every {rendition['gop_seconds']} s", figures)


LOUDNESS = QualityCheck(
    "loudness",
    "Integrated loudness within the tolerance of the target and true peak under the ceiling, measured on the "
    "stored WAV by an independent BS.1770-4 meter (not by ffmpeg's loudnorm that made it).",
    blocking=True,
    evaluate=check_loudness,
)
FIXED_GOP = QualityCheck(
    "fixed_gop",
    "Keyframes at exactly every GOP length (within a frame), starting on the first frame.",
    blocking=False,
    evaluate=check_gop,
)
