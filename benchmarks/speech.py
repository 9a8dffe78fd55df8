"""Benchmark: the speech assets against the bare libraries, and real-time factors per engine/model.

On one conversation episode (espeak-ng, two voices, about `--seconds` long), normalized once:
  transcript   `dagster.materialize(selection=["transcript"])` with the `speech` resource set to each
               engine/model, against faster-whisper called directly on the same normalized WAV
               (`BatchedInferencePipeline(WhisperModel(...)).transcribe(wav, beam_size=5, batch_size=8,
               word_timestamps=True)`, all segments consumed: `bare_faster_whisper`). Models are
               loaded before timing on both sides (the asset loads once per process, so a warm-up
               run comes first).
  diarization  `dagster.materialize(selection=["diarization"])` against the same pyannote pipeline
               object called directly on the waveform.
The stage document is deleted before each asset run so the stage does its work every time.
Reported: median wall seconds, RTF = seconds / audio seconds, and the asset/bare ratios
(goals: transcript <= 1.10x, diarization <= 1.10x). Figures also go to <workdir>/speech.json.

Run:  .venv/bin/python benchmarks/speech.py [--repeat 3] [--seconds 120]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = REPO / "benchmarks" / "out"
VOICES = [("en-us", 35), ("en+f3", 75)]
SENTENCES = [
    "Welcome back to the show, today we are talking about rivers and the fish that live in them.",
    "Salmon swim upstream every autumn, some of them for more than a thousand kilometres.",
    "How do they find their way back to the stream where they hatched years before?",
    "They follow the smell of the water, which they remember from their first weeks of life.",
    "That is remarkable. What happens when a dam blocks the river on the way up?",
    "Fish ladders help, although many rivers still lose most of their salmon every year.",
]
FASTER_WHISPER_OPTIONS = {"beam_size": 5, "batch_size": 8, "word_timestamps": True}
ENGINES = [("faster-whisper", "tiny.en"), ("faster-whisper", "base"), ("whisperx", "tiny.en")]


def bare_faster_whisper(model_dir: str):
    """faster-whisper's batched pipeline as the transcript stage runs it, without the stage: a
    function of a WAV path that decodes every segment."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    pipeline = BatchedInferencePipeline(WhisperModel(model_dir, device="cpu", compute_type="int8"))
    return lambda wav: list(pipeline.transcribe(str(wav), **FASTER_WHISPER_OPTIONS)[0])


def make_episode(workdir: Path, seconds: float) -> Path:
    from media_assets.demo import samples

    path = workdir / f"conversation_{int(seconds)}s.wav"
    if not path.exists():
        turns, total = [], 0.0
        while total < seconds:
            voice, pitch = VOICES[len(turns) % 2]
            text = SENTENCES[len(turns) % len(SENTENCES)]
            turns.append((voice, pitch, text))
            total += len(text) / 14 + 0.6  # espeak-ng speaks about 14 characters a second here
        samples.conversation(path, turns, gap=0.6)
    return path


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="speech-", dir=workdir))
    os.environ["DAGSTER_HOME"] = str(run_dir / "dagster_home")

    import dagster as dg
    import soundfile
    import torch

    from media_assets.definitions import defs
    from media_assets.instance import get_instance
    from media_assets.lib.core.lake import LocalStore, document_key
    from media_assets.lib.media.ingest import ingest
    from media_assets.lib.speech import asr
    from media_assets.lib.speech import diarizer as diarization
    from media_assets.resources import SETTINGS_RESOURCES, LakeResource, MediaResource, SpeechResource

    episode = make_episode(workdir, args.seconds)
    lake = LocalStore(run_dir / "lake")
    instance = get_instance()
    (outcome,) = ingest([episode], lake, MediaResource().settings().limits,
                        lambda ids: instance.add_dynamic_partitions("episodes", ids))  # fmt: skip
    episode_id = outcome.episode_id
    assets = [a for a in {a.key: a for a in defs().assets}.values() if a.partitions_def is not None]

    def materialize(selection: list[str], speech: SpeechResource) -> None:
        settings = {domain: resource() for domain, resource in SETTINGS_RESOURCES.items()}
        resources = {**settings, "lake": LakeResource(root=str(lake.root)), "speech": speech}
        quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
        result = dg.materialize(assets, partition_key=episode_id, instance=instance, resources=resources,
                                selection=selection, run_config=quiet)  # fmt: skip
        assert result.success

    def fresh(stage: str) -> None:
        (lake.root / document_key(stage, episode_id)).unlink(missing_ok=True)

    materialize(["raw_media", "normalized_audio"], SpeechResource())
    audio_doc = json.loads(lake.get_bytes(document_key("normalized_audio", episode_id)))
    wav = lake.root / audio_doc["outputs"]["audio"]["key"]
    seconds = soundfile.info(wav).duration
    print(f"episode {episode.name}: {seconds:.1f} s of two-voice speech; {args.repeat} repeats", file=sys.stderr)
    figures: dict = {"audio_seconds": seconds, "cpus": os.cpu_count(), "transcript": {}, "diarization": {}}

    for engine, model in ENGINES:
        speech = SpeechResource(asr_engine=engine, asr_model=model)
        fresh("transcript")
        materialize(["transcript"], speech)  # warm-up: loads the model into this process
        asset_runs = []
        for _ in range(args.repeat):
            fresh("transcript")
            asset_runs.append(timed(lambda speech=speech: materialize(["transcript"], speech)))
        row = {"asset_s": statistics.median(asset_runs), "asset_rtf": statistics.median(asset_runs) / seconds}
        if engine == "faster-whisper":
            bare = bare_faster_whisper(asr.resolve_model(speech.settings().asr))
            bare_runs = [timed(lambda bare=bare: bare(wav)) for _ in range(args.repeat)]
            row |= {"bare_s": statistics.median(bare_runs), "ratio": row["asset_s"] / statistics.median(bare_runs)}
        figures["transcript"][f"{engine}/{model}"] = row
        print(f"  transcript {engine}/{model}: {row}", file=sys.stderr, flush=True)

    speech = SpeechResource()
    fresh("diarization")
    materialize(["diarization"], speech)  # warm-up
    asset_runs = []
    for _ in range(args.repeat):
        fresh("diarization")
        asset_runs.append(timed(lambda: materialize(["diarization"], speech)))
    pipeline = diarization.load_pipeline(speech.settings().diarization)
    data, rate = soundfile.read(wav, dtype="float32", always_2d=True)
    waveform = torch.from_numpy(data.mean(axis=1)).unsqueeze(0)

    def bare_diarization() -> None:
        import torchaudio

        pipeline({"waveform": torchaudio.functional.resample(waveform, rate, 16000), "sample_rate": 16000})

    bare_runs = [timed(bare_diarization) for _ in range(args.repeat)]
    figures["diarization"] = {
        "asset_s": statistics.median(asset_runs),
        "asset_rtf": statistics.median(asset_runs) / seconds,
        "bare_s": statistics.median(bare_runs),
        "ratio": statistics.median(asset_runs) / statistics.median(bare_runs),
    }
    print(f"  diarization: {figures['diarization']}", file=sys.stderr)

    print(f"\nspeech on {seconds:.0f} s of audio, {os.cpu_count()} CPUs (median wall seconds, RTF = s / audio s)")
    for name, row in figures["transcript"].items():
        bare = f"bare {row['bare_s']:.2f} s, asset/bare {row['ratio']:.3f}x" if "bare_s" in row else "no bare run"
        print(f"  transcript {name:26} asset {row['asset_s']:6.2f} s  RTF {row['asset_rtf']:.3f}  {bare}")
    d = figures["diarization"]
    print(f"  diarization (local pyannote)        asset {d['asset_s']:6.2f} s  RTF {d['asset_rtf']:.3f}  "
          f"bare {d['bare_s']:.2f} s, asset/bare {d['ratio']:.3f}x")  # fmt: skip
    (workdir / "speech.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
