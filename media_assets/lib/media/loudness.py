"""EBU R128 loudness normalization with ffmpeg's two-pass `loudnorm` in linear mode.

ffmpeg traps this module handles:
- loudnorm silently falls back to dynamic (compressing) mode when the measured LRA exceeds the
  target LRA, when the linear gain would push the true peak over the limit, or when a measured
  value equals one of its "not measured" sentinels (LRA 0 for a steady tone, threshold -70).
  We pass an effective LRA that covers the input (linear gain keeps the input's range anyway),
  nudge sentinel values, pre-limit peaks that linear gain would push over the ceiling, and
  record the mode ffmpeg reports it actually used.
- loudnorm resamples to 192 kHz internally: the chain ends with `aresample` and `-ar`.
- loudnorm cannot measure clips under 3 s in its default (dynamic) mode, and its dynamic-mode
  measurement of short files is off by up to ~0.5 LU. Pass 1 therefore runs loudnorm in linear
  mode at unity gain: it reports the same input statistics pass 2 will see, works on clips of
  any length, matches an independent BS.1770 meter, and runs about 7x faster than a
  dynamic-mode pass (no 192 kHz processing).
- Digital silence has no measurable loudness (-inf): it is resampled without gain.
- More than two channels (5.1, 7.1...) are downmixed to stereo *before* measuring, with ffmpeg's
  standard matrix (the one `-ac 2` uses: centre and surrounds at -3 dB, LFE dropped), so the
  target applies to what is delivered; downmixing after loudnorm would miss it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.core.settings import knob
from media_assets.lib.media.media_tools import SAFE_INPUT, file_url, run_ffmpeg

MAX_LRA = 50.0
LIMITER_HEADROOMS_DB = (1.0, 2.0, 3.0)
MIN_LIMITER_CEILING_DB = -24.0  # alimiter's lowest limit (0.0625)


@dataclass(frozen=True)
class LoudnessTarget:
    integrated: float = knob(-23.0, "target_lufs", "integrated loudness target (EBU R128: -23; podcasts: -16)")
    true_peak: float = knob(-1.0, "true_peak_dbtp", "true-peak ceiling (dBTP)")
    lra: float = knob(7.0, "loudness_range_lu", "loudness range target (LU)")
    sample_rate: int = knob(48000, "sample_rate", "normalized audio sample rate")


@dataclass(frozen=True)
class Measurement:
    integrated: float
    true_peak: float
    lra: float
    threshold: float


def parse_loudnorm_json(stderr: str) -> dict:
    """The JSON block loudnorm prints (print_format=json) at the end of stderr."""
    blocks = re.findall(r"\{[^{}]*\}", stderr)
    for block in reversed(blocks):
        if '"input_i"' in block:
            return json.loads(block)
    raise ValueError("ffmpeg printed no loudnorm statistics")


def measurement_from(stats: dict, prefix: str) -> Measurement | None:
    """loudnorm's input_* or output_* figures; None when nothing is above the absolute gate."""
    integrated, true_peak = float(stats[f"{prefix}_i"]), float(stats[f"{prefix}_tp"])
    if not (math.isfinite(integrated) and math.isfinite(true_peak)):
        return None
    return Measurement(integrated, true_peak, float(stats[f"{prefix}_lra"]), float(stats[f"{prefix}_thresh"]))


def effective_lra(measured: Measurement, target: LoudnessTarget) -> float:
    """Linear mode keeps the input's range; a target at least that wide keeps ffmpeg linear."""
    return round(min(MAX_LRA, max(target.lra, measured.lra + 0.1)), 2)


def linear_true_peak(measured: Measurement, target: LoudnessTarget) -> float:
    return measured.true_peak + (target.integrated - measured.integrated)


def limiter_ceiling_db(measured: Measurement, target: LoudnessTarget, headroom_db: float) -> float | None:
    """The sample-peak ceiling (dBFS, before gain) that lets linear gain respect the true-peak
    limit, or None when no limiting is needed."""
    if linear_true_peak(measured, target) <= target.true_peak:
        return None
    gain = target.integrated - measured.integrated
    return target.true_peak - gain - headroom_db


def limiter_filter(ceiling_db: float) -> str:
    limit = 10 ** (ceiling_db / 20)
    return f"alimiter=limit={limit:.6f}:level=0:attack=1:release=60:latency=1"


def loudnorm_filter(target: LoudnessTarget, lra: float, measured: Measurement) -> str:
    """A linear-mode loudnorm applying target - measured gain."""
    # loudnorm treats exactly these values as "not measured" and would go dynamic.
    options = [
        f"I={target.integrated}",
        f"TP={target.true_peak}",
        f"LRA={lra}",
        f"measured_I={min(measured.integrated, -0.01):.2f}",
        f"measured_TP={measured.true_peak:.2f}",
        f"measured_LRA={max(measured.lra, 0.01):.2f}",
        f"measured_thresh={min(max(measured.threshold, -69.99), -0.01):.2f}",
        "linear=true",
        "print_format=json",
    ]
    return "loudnorm=" + ":".join(options)


def measuring_filter(target: LoudnessTarget) -> str:
    """Pass 1: linear mode at unity gain (claimed input = target, no peaks), output discarded."""
    return loudnorm_filter(target, target.lra, Measurement(target.integrated, -99.0, 1.0, target.integrated - 10))


def _input_args(src: Path) -> list[str]:
    return [*SAFE_INPUT, "-i", file_url(src), "-map", "0:a:0"]


def measure(src: Path, target: LoudnessTarget, pre_filters: list[str]) -> Measurement | None:
    """Pass 1: loudnorm's measurement of the first audio stream (after `pre_filters`)."""
    chain = ",".join([*pre_filters, measuring_filter(target)])
    stderr = run_ffmpeg(["-v", "info", *_input_args(src), "-af", chain, "-f", "null", "-"], task="loudness_measure")
    return measurement_from(parse_loudnorm_json(stderr), "input")


def output_channels(source_channels: int) -> int:
    """Mono stays mono, stereo stays stereo, anything wider becomes stereo."""
    return min(source_channels, 2)


def downmix_filters(source_channels: int) -> list[str]:
    """The standard stereo downmix for more than two channels, as a filter (the matrix `-ac 2` uses)."""
    return ["aformat=channel_layouts=stereo"] if source_channels > 2 else []


def _write_pcm_args(dst: Path, target: LoudnessTarget) -> list[str]:
    return [
        "-ar", str(target.sample_rate), "-c:a", "pcm_s16le", "-map_metadata", "-1",
        "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", "wav", "-y", file_url(dst),
    ]  # fmt: skip


def _figures(prefix: str, measured: Measurement | None) -> dict:
    return {
        f"{prefix}_i": measured and measured.integrated,
        f"{prefix}_tp": measured and measured.true_peak,
        f"{prefix}_lra": measured and measured.lra,
        f"{prefix}_thresh": measured and measured.threshold,
    }


def normalize(src: Path, dst: Path, target: LoudnessTarget, source_channels: int) -> dict:
    """Normalize the first audio stream of `src` (with `source_channels` channels) into a 16-bit
    PCM WAV at `dst`.

    Returns the `loudness` row fields (without episode_id): input and output I/TP/LRA, the
    targets, the mode ffmpeg reported, and what this module did to stay linear. Input figures
    are measured after the downmix, on the signal that gets the gain.
    """
    downmix = downmix_filters(source_channels)
    resample = f"aresample={target.sample_rate}"
    measured = original = measure(src, target, downmix)
    if measured is None:
        chain = ",".join([*downmix, resample])
        run_ffmpeg(["-v", "error", *_input_args(src), "-af", chain, *_write_pcm_args(dst, target)], task="resample")
        return {**_figures("input", None), **_figures("output", None), **_targets(target), "effective_lra": None,
                "normalization_type": "none", "pre_limiter_ceiling_db": None}  # fmt: skip

    pre_filters: list[str] = downmix
    limiter_db = None
    for headroom in LIMITER_HEADROOMS_DB:
        ceiling = limiter_ceiling_db(measured, target, headroom)
        if ceiling is None or ceiling < MIN_LIMITER_CEILING_DB:
            break
        limiter_db = round(ceiling, 2)
        pre_filters = [*downmix, limiter_filter(ceiling)]
        measured = measure(src, target, pre_filters)
    lra = effective_lra(measured, target)
    chain = ",".join([*pre_filters, loudnorm_filter(target, lra, measured), resample])
    stderr = run_ffmpeg(["-v", "info", *_input_args(src), "-af", chain, *_write_pcm_args(dst, target)], task="loudnorm")
    stats = parse_loudnorm_json(stderr)
    return {
        **_figures("input", original),
        **_figures("output", measurement_from(stats, "output")),
        **_targets(target),
        "effective_lra": lra,
        "normalization_type": str(stats.get("normalization_type", "unknown")).lower(),
        "pre_limiter_ceiling_db": limiter_db,
    }


def _targets(target: LoudnessTarget) -> dict:
    return {
        "target_i": target.integrated,
        "target_tp": target.true_peak,
        "target_lra": target.lra,
        "sample_rate": target.sample_rate,
        "bit_depth": 16,
    }
