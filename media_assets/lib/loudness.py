"""EBU R128 loudness normalization with ffmpeg's two-pass `loudnorm` in linear mode.

ffmpeg traps this module handles:
- loudnorm silently falls back to dynamic (compressing) mode when the measured LRA exceeds the
  target LRA, when the linear gain would push the true peak over the limit, or when a measured
  value equals one of its "not measured" sentinels (LRA 0 for a steady tone, threshold -70).
  We pass an effective LRA that covers the input (linear gain keeps the input's range anyway),
  nudge sentinel values, pre-limit peaks that linear gain would push over the ceiling, and
  record the mode ffmpeg reports it actually used.
- loudnorm resamples to 192 kHz internally: the chain ends with `aresample` and `-ar`.
- loudnorm cannot measure clips under 3 s: such clips are looped for measuring and normalized
  by the equivalent linear gain (`volume`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from media_assets.lib.media_tools import SAFE_INPUT, file_url, run_ffmpeg

MIN_MEASURABLE_SECONDS = 3.0
MAX_LRA = 50.0
LIMITER_HEADROOMS_DB = (1.0, 2.0, 3.0)
MIN_LIMITER_CEILING_DB = -24.0  # alimiter's lowest limit (0.0625)


@dataclass(frozen=True)
class LoudnessTarget:
    integrated: float = -23.0
    true_peak: float = -1.0
    lra: float = 7.0
    sample_rate: int = 48000


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


def _finite(value: str, fallback: float) -> float:
    number = float(value)
    return number if math.isfinite(number) else fallback


def measurement_from(stats: dict, prefix: str) -> Measurement:
    return Measurement(
        integrated=_finite(stats[f"{prefix}_i"], -99.0),
        true_peak=_finite(stats[f"{prefix}_tp"], -99.0),
        lra=_finite(stats[f"{prefix}_lra"], 0.0),
        threshold=_finite(stats[f"{prefix}_thresh"], -70.0),
    )


def measurement_loops(duration_s: float) -> int:
    """How many extra times to loop a clip so loudnorm sees at least 3 s of it."""
    if duration_s >= MIN_MEASURABLE_SECONDS:
        return 0
    return math.ceil(MIN_MEASURABLE_SECONDS * 1.2 / max(duration_s, 0.05))


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


def loudnorm_filter(target: LoudnessTarget, lra: float, measured: Measurement | None) -> str:
    options = [f"I={target.integrated}", f"TP={target.true_peak}", f"LRA={lra}"]
    if measured is not None:
        # loudnorm treats exactly these values as "not measured" and would go dynamic.
        options += [
            f"measured_I={min(measured.integrated, -0.01):.2f}",
            f"measured_TP={measured.true_peak:.2f}",
            f"measured_LRA={max(measured.lra, 0.01):.2f}",
            f"measured_thresh={min(max(measured.threshold, -69.99), -0.01):.2f}",
            "linear=true",
        ]
    options.append("print_format=json")
    return "loudnorm=" + ":".join(options)


def _input_args(src: Path, loops: int) -> list[str]:
    loop = ["-stream_loop", str(loops)] if loops else []
    return [*SAFE_INPUT, *loop, "-i", file_url(src)]


def measure(src: Path, target: LoudnessTarget, pre_filters: list[str], loops: int) -> Measurement:
    """Pass 1: loudnorm's own measurement of the first audio stream (after `pre_filters`)."""
    chain = ",".join([*pre_filters, loudnorm_filter(target, target.lra, None)])
    stderr = run_ffmpeg(["-v", "info", *_input_args(src, loops), "-map", "0:a:0", "-af", chain, "-f", "null", "-"])
    return measurement_from(parse_loudnorm_json(stderr), "input")


def _write_pcm_args(dst: Path, target: LoudnessTarget, channels: int) -> list[str]:
    downmix = ["-ac", "2"] if channels > 2 else []
    return [
        "-ar",
        str(target.sample_rate),
        *downmix,
        "-c:a",
        "pcm_s16le",
        "-map_metadata",
        "-1",
        "-fflags",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-f",
        "wav",
        "-y",
        file_url(dst),
    ]


def normalize(src: Path, dst: Path, target: LoudnessTarget, duration_s: float, channels: int) -> dict:
    """Normalize the first audio stream of `src` into a 16-bit PCM WAV at `dst`.

    Returns the `loudness` row fields (without episode_id): input and output I/TP/LRA, the
    targets, the mode ffmpeg reported, and what this module did to stay linear.
    """
    loops = measurement_loops(duration_s)
    pre_filters: list[str] = []
    measured = measure(src, target, pre_filters, loops)
    original = measured
    limiter_db = None
    for headroom in LIMITER_HEADROOMS_DB:
        ceiling = limiter_ceiling_db(measured, target, headroom)
        if ceiling is None or ceiling < MIN_LIMITER_CEILING_DB:
            break
        limiter_db = round(ceiling, 2)
        pre_filters = [limiter_filter(ceiling)]
        measured = measure(src, target, pre_filters, loops)
    lra = effective_lra(measured, target)
    resample = f"aresample={target.sample_rate}"

    if loops:
        gain = target.integrated - measured.integrated
        gain = min(gain, target.true_peak - measured.true_peak)
        chain = ",".join([*pre_filters, f"volume={gain:.4f}dB", resample])
        run_ffmpeg(
            [
                "-v",
                "error",
                *_input_args(src, 0),
                "-map",
                "0:a:0",
                "-af",
                chain,
                *_write_pcm_args(dst, target, channels),
            ]
        )
        output = measure(dst, target, [], measurement_loops(duration_s))
        method, mode = "gain_short_clip", "linear"
    else:
        chain = ",".join([*pre_filters, loudnorm_filter(target, lra, measured), resample])
        stderr = run_ffmpeg(
            ["-v", "info", *_input_args(src, 0), "-map", "0:a:0", "-af", chain, *_write_pcm_args(dst, target, channels)]
        )
        stats = parse_loudnorm_json(stderr)
        output = measurement_from(stats, "output")
        method, mode = "loudnorm_two_pass", str(stats.get("normalization_type", "unknown")).lower()

    return {
        "input_i": original.integrated,
        "input_tp": original.true_peak,
        "input_lra": original.lra,
        "input_thresh": original.threshold,
        "output_i": output.integrated,
        "output_tp": output.true_peak,
        "output_lra": output.lra,
        "output_thresh": output.threshold,
        "target_i": target.integrated,
        "target_tp": target.true_peak,
        "target_lra": target.lra,
        "effective_lra": lra,
        "normalization_type": mode,
        "method": method,
        "pre_limiter_ceiling_db": limiter_db,
        "sample_rate": target.sample_rate,
        "bit_depth": 16,
    }
