"""Benchmark: the `normalized_audio` asset against the bare ffmpeg commands it runs.

What is compared, on the same 10-minute file (the lake's stored copy of the episode):

  asset  `dagster.materialize(<episode assets>, selection=["normalized_audio"], partition_key=<id>)`
         on a fresh local lake and Dagster instance, as `media-lake materialize` runs it: the
         Dagster run and step bookkeeping, the stage's fingerprint check, `loudness.normalize`
         (ffmpeg pass 1 + pass 2), the WAV copied into the lake, the `loudness` parquet row and
         the stage document. Before each run the stage document
         `normalized_audio/episode_id=<id>/normalized_audio.json` is deleted, so the
         skip-if-unchanged check (`StageRun.up_to_date`) finds nothing and the stage does all
         its work every time.
  bare   the two ffmpeg commands `loudness.normalize` builds, spelled out below and run with
         subprocess:
           pass 1  -af loudnorm=..:measured_I=<target>:measured_TP=-99:..:linear=true:print_format=json
                   -f null -       (linear mode at unity gain: measures without 192 kHz processing)
           pass 2  -af loudnorm=..:measured_*=..:linear=true:print_format=json,aresample=48000
                   -ar 48000 -c:a pcm_s16le ... -f wav <tmp>/audio.wav
  textbook  the usual two-pass recipe from ffmpeg's documentation: the same pass 2, but pass 1
         in loudnorm's default dynamic mode (`loudnorm=I=..:TP=..:LRA=..:print_format=json`).
  bare + meter  after each bare run, ffmpeg's own EBU R128 meter reads the WAV it wrote
         (`ebur128=peak=true`), timed apart: the bare tools doing what the asset does with its
         loudness gate (normalize, then measure what was written), so the like-for-like figure.

Asset and bare runs alternate (the order flips every repetition, so drift and cache effects
hit both sides alike). Reported: wall seconds per run, medians, the ratio of the medians
asset/bare (goal: <= 1.10x, issue 14), and the real-time factor RTF = wall seconds / audio seconds
(below 1 is faster than real time). Also shown: CPU seconds (this process plus its ffmpeg
children), less sensitive to other load on the machine than wall time, and the asset's step
time (STEP_START..STEP_SUCCESS in the event log), which splits Dagster's own overhead from the
stage's. Each bare WAV is checked to be byte-identical to the asset's, so both sides provably
did the same ffmpeg work.

The episode: a few paragraphs spoken by espeak-ng (two voices, panned apart), looped to 600 s,
stereo 44.1 kHz at about -30 LUFS (the normalization adds about +7 dB), encoded as MP3
(libmp3lame CBR 128 kb/s, the usual podcast format, so decoding is part of the work). It is
generated deterministically once and cached in the work folder (its name carries a hash of the
recipe); the lake and the Dagster home are rebuilt on every invocation.

Run:  make bench          (= uv run --frozen python benchmarks/normalize_audio.py)
      .venv/bin/python benchmarks/normalize_audio.py --repeat 5
Figures go to stdout and to <workdir>/normalize_audio.json (default workdir: benchmarks/out/).
Needs ffmpeg and espeak-ng on PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from media_assets.lib.core.identity import sha256_file

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = REPO / "benchmarks" / "out"
GOAL_RATIO = 1.10  # issue 14

# --- the episode ------------------------------------------------------------------------------

EPISODE_SECONDS = 600
EPISODE_LUFS = -30.0
EPISODE_RATE = 44100
MP3_ARGS = ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "0"]
BITEXACT = ["-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1"]
GAP_SECONDS = 0.7
# (espeak-ng voice, pitch, words per minute, left gain, right gain, text)
PARAGRAPHS = [
    ("en-us", 35, 165, 1.0, 0.7,
     "Welcome back to Media Lake, the show about keeping audio and video data in order. "
     "I am your host, and today we are talking about loudness: why some episodes are quiet, "
     "why others blast out of your headphones, and what a pipeline can do about it."),
    ("en+f3", 75, 175, 0.7, 1.0,
     "Thanks for having me. The short version is that loudness is not the same as peak level. "
     "Broadcasters measure it in LUFS, loudness units relative to full scale, integrated over "
     "the whole programme. European television aims for minus twenty three, most podcast "
     "platforms for something closer to minus sixteen."),
    ("en-us", 35, 165, 1.0, 0.7,
     "So if I record in my kitchen and forget to check my levels, the file might sit at minus "
     "thirty, and a listener has to turn the volume all the way up, and then the next show in "
     "the queue is painfully loud."),
    ("en+f3", 75, 175, 0.7, 1.0,
     "Exactly. A normalization step measures the whole file first, then applies one constant "
     "gain, so the dynamics of the conversation stay intact. Two passes over the audio, no "
     "compression, and a true peak limit so nothing clips when it is converted back to analog."),
    ("en-us", 35, 165, 1.0, 0.7,
     "And that is what we will do to this very episode. Stay with us after the break, when we "
     "look at transcripts, checksums and what happens when an upload arrives corrupted."),
]  # fmt: skip


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (ffmpeg) so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _ffmpeg(*args: str) -> str:
    done = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-y", *args], capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return done.stderr.decode(errors="replace")


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as handle:
        frames = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
        return frames.astype(np.float64) / 32768, handle.getframerate()


def make_episode(workdir: Path) -> Path:
    """The cached episode MP3, generated first when missing (deterministic for a given recipe)."""
    from media_assets.demo import samples
    from media_assets.lib.media import loudness

    recipe = {
        "paragraphs": PARAGRAPHS,
        "gap": GAP_SECONDS,
        "seconds": EPISODE_SECONDS,
        "lufs": EPISODE_LUFS,
        "rate": EPISODE_RATE,
        "mp3": MP3_ARGS,
    }
    stamp = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]
    path = workdir / f"episode_{EPISODE_SECONDS}s_{stamp}.mp3"
    if path.is_file():
        return path
    print(
        f"generating {path.relative_to(REPO) if path.is_relative_to(REPO) else path} ...", file=sys.stderr, flush=True
    )
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Each paragraph in its voice (22050 Hz mono), panned into a stereo bed with gaps.
        turns = []
        for i, (voice, pitch, speed, left, right, text) in enumerate(PARAGRAPHS):
            mono, rate = _read_wav(samples.speech(Path(tmp) / f"p{i}.wav", text, voice, pitch, speed))
            gap = np.zeros(round(GAP_SECONDS * rate))
            turns.append(np.stack([np.concatenate([mono, gap]) * g for g in (left, right)], axis=1))
        base = Path(tmp) / "base.wav"
        pcm = np.clip(np.round(np.concatenate(turns) * 32767), -32768, 32767).astype("<i2")
        with wave.open(str(base), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())
        # 2. Measure the loop at the episode's rate, then loop it to length, set the level, encode.
        stereo = Path(tmp) / "base44.wav"
        _ffmpeg("-i", str(base), "-ar", str(EPISODE_RATE), *BITEXACT, str(stereo))
        measured = loudness.measure(stereo, loudness.LoudnessTarget(), []).integrated
        gain_db = EPISODE_LUFS - measured
        mp3 = Path(tmp) / "episode.mp3"
        _ffmpeg(
            "-stream_loop",
            "-1",
            "-i",
            str(stereo),
            "-t",
            str(EPISODE_SECONDS),
            "-af",
            f"volume={gain_db:.2f}dB",
            "-ar",
            str(EPISODE_RATE),
            "-ac",
            "2",
            *MP3_ARGS,
            *BITEXACT,
            str(mp3),
        )
        partial = path.with_suffix(".part")
        shutil.copyfile(mp3, partial)
        os.replace(partial, path)
    return path


# --- the lake ---------------------------------------------------------------------------------


class Bench:
    """A fresh lake and Dagster instance holding the episode, with raw_media materialized."""

    def __init__(self, workdir: Path, episode: Path):
        run_dir = workdir / "run"
        shutil.rmtree(run_dir, ignore_errors=True)
        self.lake_root = run_dir / "lake"
        os.environ["DAGSTER_HOME"] = str(run_dir / "dagster_home")
        os.environ["MEDIA_LAKE_ROOT"] = str(self.lake_root)

        from media_assets import episode_runs
        from media_assets.definitions import defs
        from media_assets.instance import get_instance
        from media_assets.lib.core.lake import document_key, media_key, raw_key
        from media_assets.lib.media.ingest import ingest
        from media_assets.resources import LakeResource

        self.episode_runs = episode_runs
        self.instance = get_instance()
        self.definitions = definitions = defs()
        self.resources = {**definitions.resources, "lake": LakeResource(root=str(self.lake_root))}
        self.store = self.resources["lake"].store()
        self.target = self.resources["media"].settings().loudness
        unique = {a.key: a for a in definitions.assets}
        self.assets = [a for a in unique.values() if a.partitions_def is not None]

        outcomes = ingest(
            [episode],
            self.store,
            self.resources["media"].settings().limits,
            lambda ids: self.instance.add_dynamic_partitions("episodes", ids),
        )
        if outcomes[0].status != "registered":
            raise RuntimeError(f"ingest failed: {outcomes[0].to_json()}")
        self.episode_id = outcomes[0].episode_id
        self.source = self.lake_root / raw_key(self.episode_id)  # what both sides read
        self.document = self.lake_root / document_key("normalized_audio", self.episode_id)
        self.raw_document = document_key("raw_media", self.episode_id)
        self.audio_key = media_key("normalized_audio", self.episode_id, "audio.wav")
        self._materialize("raw_media")  # not timed

    def _materialize(self, asset: str):
        return self.episode_runs.materialize(  # as `media-lake materialize` runs a stage
            self.definitions,
            self.assets,
            [asset],
            resources=self.resources,
            partition_key=self.episode_id,
            instance=self.instance,
        )

    def run_asset(self) -> dict:
        self.document.unlink(missing_ok=True)  # defeat the fingerprint skip
        cpu, start = _cpu_seconds(), time.perf_counter()
        result = self._materialize("normalized_audio")
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        [materialization] = result.asset_materializations_for_node("normalized_audio")
        if materialization.metadata["skipped_unchanged"].value:
            raise RuntimeError("normalized_audio skipped its work; the benchmark would be meaningless")
        stamps = {
            e.dagster_event.event_type_value: e.timestamp
            for e in self.instance.all_logs(result.run_id)
            if e.dagster_event
        }
        return {"wall_s": wall, "cpu_s": cpu, "step_s": stamps["STEP_SUCCESS"] - stamps["STEP_START"]}

    def audio_seconds(self) -> float:
        """The decoded duration raw_media recorded."""
        return json.loads((self.lake_root / self.raw_document).read_text())["decoded_duration_s"]

    def loudness_row(self) -> dict:
        return json.loads(self.document.read_text())["loudness"]

    def run_quality_gates(self) -> tuple[float, dict]:
        """Seconds the asset's quality gates (contract, and the independent loudness meter) take on
        its stored output (part of every asset run, work the bare commands do not do), and the
        loudness gate's figures."""
        from media_assets.lib.core import quality
        from media_assets.lib.stages import BY_NAME

        document = json.loads(self.document.read_text())
        settings = self.resources["media"].settings()
        start = time.perf_counter()
        checks = BY_NAME["normalized_audio"].quality_checks
        outcomes = {check.name: quality.evaluate(check, self.store, document, settings) for check in checks}
        seconds = time.perf_counter() - start
        assert all(o.passed for o in outcomes.values()), outcomes
        return seconds, outcomes["loudness"].figures


# --- the bare equivalent ----------------------------------------------------------------------


def run_bare(src: Path, target, expected_sha256: str | None, textbook: bool = False) -> dict:
    """Pass 1 and pass 2 as loudness.normalize runs them for an input that needs no pre-limiter
    (with `textbook`, pass 1 in loudnorm's default dynamic mode); only ffmpeg calls are timed."""
    from media_assets.lib.media.loudness import (
        effective_lra,
        loudnorm_filter,
        measurement_from,
        measuring_filter,
        parse_loudnorm_json,
    )
    from media_assets.lib.media.media_tools import ffmpeg_binary

    ffmpeg = ffmpeg_binary()
    src_url = "file:" + str(src.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        dst_url = "file:" + str(Path(tmp) / "audio.wav")
        cpu, start = _cpu_seconds(), time.perf_counter()

        measure_filter = (
            f"loudnorm=I={target.integrated}:TP={target.true_peak}:LRA={target.lra}:print_format=json"
            if textbook
            else measuring_filter(target)
        )
        # What both passes share: the input, read as a local file only, its first audio stream.
        read_input = [ffmpeg, "-nostdin", "-hide_banner", "-v", "info", "-protocol_whitelist", "file",
                      "-i", src_url, "-map", "0:a:0"]  # fmt: skip
        pass1 = [*read_input, "-af", measure_filter, "-f", "null", "-"]
        stderr = subprocess.run(pass1, capture_output=True, check=True).stderr.decode("utf-8", "replace")
        measured = measurement_from(parse_loudnorm_json(stderr), "input")

        apply_filter = loudnorm_filter(target, effective_lra(measured, target), measured)
        pass2 = [
            *read_input,
            "-af",
            f"{apply_filter},aresample={target.sample_rate}",
            "-ar",
            str(target.sample_rate),
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
            dst_url,
        ]
        stderr = subprocess.run(pass2, capture_output=True, check=True).stderr.decode("utf-8", "replace")
        stats = parse_loudnorm_json(stderr)

        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        meter = meter_with_ffmpeg(ffmpeg, dst_url)
        same = expected_sha256 is not None and sha256_file(Path(tmp) / "audio.wav") == expected_sha256
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "identical_to_asset": same,
        "normalization_type": str(stats.get("normalization_type", "")).lower(),
        "meter": meter,
    }


def meter_with_ffmpeg(ffmpeg: str, wav_url: str) -> dict:
    """The bare tools' check of a written file, the counterpart of the asset's loudness gate:
    ffmpeg's own EBU R128 meter (`ebur128=peak=true`: integrated loudness, 4x true peak)."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    command = [ffmpeg, "-nostdin", "-hide_banner", "-protocol_whitelist", "file", "-i", wav_url,
               "-af", "ebur128=peak=true", "-f", "null", "-"]  # fmt: skip
    stderr = subprocess.run(command, capture_output=True, check=True).stderr.decode("utf-8", "replace")
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    summary = stderr[stderr.rindex("Summary:") :]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "integrated_lufs": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
        "true_peak_dbtp": float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1)),
    }


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="asset/bare run pairs (default 3)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=DEFAULT_WORKDIR,
        help=f"episode cache, lake and results (default {DEFAULT_WORKDIR.relative_to(REPO)})",
    )
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()

    episode = make_episode(workdir)
    bench = Bench(workdir, episode)
    seconds = bench.audio_seconds()
    print(
        f"episode {bench.episode_id}: {episode.name}, {seconds:.1f} s, "
        f"{episode.stat().st_size / 1e6:.1f} MB; {args.repeat} asset/bare pairs",
        file=sys.stderr,
        flush=True,
    )

    sides = ("asset", "bare", "textbook")
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for rep in range(args.repeat):
        for side in sides[rep % 3 :] + sides[: rep % 3]:  # rotate the order every repetition
            if side == "asset":
                runs[side].append(bench.run_asset())
            else:
                expected = bench.store.current_sha256(bench.audio_key)
                runs[side].append(run_bare(bench.source, bench.target, expected, textbook=side == "textbook"))
            print(f"  run {rep + 1} {side:8} {runs[side][-1]['wall_s']:7.2f} s", file=sys.stderr, flush=True)

    row = bench.loudness_row()
    gates = [bench.run_quality_gates() for _ in range(args.repeat)]
    gates_s, gate_figures = statistics.median(seconds for seconds, _ in gates), gates[0][1]
    like_for_like = row["normalization_type"] == "linear" and row["pre_limiter_ceiling_db"] is None
    median = {side: statistics.median(r["wall_s"] for r in runs[side]) for side in sides}
    median_cpu = {side: statistics.median(r["cpu_s"] for r in runs[side]) for side in sides}
    median_step = statistics.median(r["step_s"] for r in runs["asset"])
    ratio = median["asset"] / median["bare"]
    cpu_ratio = median_cpu["asset"] / median_cpu["bare"]
    textbook_ratio = median["asset"] / median["textbook"]
    # normalize, then meter what was written: the bare tools doing what the asset with its gates does
    verified = statistics.median(r["wall_s"] + r["meter"]["wall_s"] for r in runs["bare"])
    verified_cpu = statistics.median(r["cpu_s"] + r["meter"]["cpu_s"] for r in runs["bare"])
    ffmpeg_meter = runs["bare"][0]["meter"]
    rtf = {side: median[side] / seconds for side in sides}
    load = os.getloadavg()

    print()
    print(
        f"normalized_audio, {seconds:.0f} s episode ({episode.suffix[1:]}), {os.cpu_count()} CPUs; "
        "wall seconds (CPU seconds)"
    )
    print(f"{'run':>6} | {'asset':>15} | {'asset step':>10} | {'bare':>15} | {'textbook':>15} | asset/bare")

    def line(name: str, asset: dict, step: float, bare: dict, textbook: dict) -> None:
        print(
            f"{name:>6} | {asset['wall_s']:6.2f} ({asset['cpu_s']:6.2f}) | {step:10.2f} | "
            f"{bare['wall_s']:6.2f} ({bare['cpu_s']:6.2f}) | {textbook['wall_s']:6.2f} ({textbook['cpu_s']:6.2f}) | "
            f"{asset['wall_s'] / bare['wall_s']:9.3f}x"
        )

    for i, (a, b, t) in enumerate(zip(runs["asset"], runs["bare"], runs["textbook"], strict=True), 1):
        line(str(i), a, a["step_s"], b, t)
    line(
        "median",
        *({"wall_s": median[s], "cpu_s": median_cpu[s]} for s in ("asset",)),
        median_step,
        *({"wall_s": median[s], "cpu_s": median_cpu[s]} for s in ("bare", "textbook")),
    )
    print("RTF (wall / audio seconds): " + ", ".join(f"{s} {rtf[s]:.4f} ({1 / rtf[s]:.0f}x real time)" for s in sides))
    print(
        f"ratio of medians asset/bare: {ratio:.3f}x wall, {cpu_ratio:.3f}x CPU; goal <= {GOAL_RATIO}x: "
        f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}; asset/textbook two-pass: {textbook_ratio:.3f}x"
    )
    print(
        f"quality gates (contract, independent loudness meter): {gates_s:.2f} s of the asset's "
        f"{median['asset']:.2f} s; "
        f"asset without its gates / bare: {(median['asset'] - gates_s) / median['bare']:.3f}x"
    )
    print(
        f"bare + ffmpeg's ebur128 meter on its output (normalize, then check): {verified:.2f} s wall "
        f"({verified_cpu:.2f} s CPU); asset/that: {median['asset'] / verified:.3f}x wall, "
        f"{median_cpu['asset'] / verified_cpu:.3f}x CPU. Meters on the written file: ffmpeg "
        f"{ffmpeg_meter['integrated_lufs']} LUFS, {ffmpeg_meter['true_peak_dbtp']} dBTP; the asset's gate "
        f"{gate_figures['integrated_lufs']} LUFS, {gate_figures['true_peak_dbtp']} dBTP"
    )
    print(
        f"loudness {row['input_i']:.1f} -> {row['output_i']:.1f} LUFS, mode {row['normalization_type']}; "
        f"bare output identical to the asset's: {all(r['identical_to_asset'] for r in runs['bare'])}"
    )
    print(
        f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(other work on the machine skews wall times; the CPU seconds less so)"
    )
    if not like_for_like:
        print(
            f"WARNING: the asset used pre-limiter {row['pre_limiter_ceiling_db']} / mode {row['normalization_type']}; "
            "the bare side does not, so the comparison is not like for like"
        )

    figures = {
        "episode": {
            "file": str(episode),
            "episode_id": bench.episode_id,
            "audio_seconds": seconds,
            "size_bytes": episode.stat().st_size,
            "sha256": sha256_file(episode),
        },
        "loudness": row,
        "like_for_like": like_for_like,
        "runs": runs,
        "median_s": median,
        "median_cpu_s": median_cpu,
        "median_asset_step_s": median_step,
        "median_quality_gates_s": gates_s,
        "ratio_asset_over_bare": ratio,
        "cpu_ratio_asset_over_bare": cpu_ratio,
        "ratio_asset_over_textbook": textbook_ratio,
        "median_bare_and_meter_s": verified,
        "median_bare_and_meter_cpu_s": verified_cpu,
        "ratio_asset_over_bare_and_meter": median["asset"] / verified,
        "loudness_gate_figures": gate_figures,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio <= GOAL_RATIO,
        "rtf": rtf,
        "environment": {
            "cpus": os.cpu_count(),
            "load_average_at_end": load,
            "platform": platform.platform(),
            "python": platform.python_version(),
            "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0],
        },
    }
    out = workdir / "normalize_audio.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
